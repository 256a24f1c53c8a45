import json
import os.path as osp
from typing import List

import numpy as np

from mmpretrain.registry import DATASETS
from .base_microscopy import AnnotationError, MicroscopyDataset


@DATASETS.register_module()
class DigitBags(MicroscopyDataset):
    """The DigitBags benchmark written by ``tools/dataset_converters/make_digitbags.py``
    (either preset: presence bags, or Megapixel digits with its ``majority``, ``max``
    or multi-label ``multi`` task, as ``meta.json`` says).

    Every sample carries its digits' boxes ``gt_bboxes`` (n, 4, xyxy canvas pixels),
    their classes ``gt_digits`` (n,) and ``target_digit`` (the classes that decide its
    label), which the geometric transforms keep consistent and
    ``InstanceLocalization`` scores.

    Args:
        data_root (str): the generator's ``--out`` directory.
        split (str): ``train``, ``val`` or ``test``.
        pipeline (list): data pipeline.
        skip_invalid (bool): skip unreadable images (counted in the log).
    """
    LAYOUT = ('<data_root>/meta.json, <data_root>/{train,val,test}.txt, '
              '<data_root>/{split}_instances.json, <data_root>/images/<split>/*.png '
              '(make it with tools/dataset_converters/make_digitbags.py --out <data_root>)')

    def __init__(self, data_root: str, split: str = 'train', pipeline=(), **kwargs):
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"DigitBags split must be 'train', 'val' or 'test', got {split!r}")
        self.split = split
        self.require_dir(data_root)
        self.require_file(osp.join(data_root, 'meta.json'), 'meta file')
        with open(osp.join(data_root, 'meta.json')) as f:
            self.spec = json.load(f)
        metainfo = dict(classes=tuple(self.spec['classes']))
        super().__init__(data_root=data_root, ann_file=f'{split}.txt', metainfo=metainfo,
                         pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        self.require_file(self.ann_file, 'annotation file')
        inst_file = osp.join(self.data_root, f'{self.split}_instances.json')
        self.require_file(inst_file, 'instance file')
        with open(inst_file) as f:
            instances = json.load(f)
        data_list = []
        with open(self.ann_file) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                path, label = self.annotation_item(line, line_no,
                                                   self.spec.get('multi_label', False))
                inst = instances.get(line.split()[0])
                if inst is None:
                    raise AnnotationError(f'{self.ann_file}:{line_no}: {line.split()[0]!r} '
                                          f'has no entry in {inst_file}')
                data_list.append(dict(
                    img_path=path, gt_label=label,
                    gt_bboxes=np.asarray(inst['boxes'], np.float32).reshape(-1, 4),
                    gt_digits=np.asarray(inst['digits'], np.int64),
                    target_digit=np.asarray(inst.get('targets', [self.spec.get('target')]),
                                            np.int64)))
        return self.filter_readable(data_list)
