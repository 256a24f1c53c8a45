import os.path as osp
from typing import List

import numpy as np

from mmpretrain.registry import DATASETS
from .base_microscopy import AnnotationError, MicroscopyDataset, check_classes, read_json


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
        self.spec = self.read_meta(osp.join(data_root, 'meta.json'))
        metainfo = dict(classes=tuple(self.spec['classes']))
        super().__init__(data_root=data_root, ann_file=f'{split}.txt', metainfo=metainfo,
                         pipeline=list(pipeline), **kwargs)

    @staticmethod
    def read_meta(path: str) -> dict:
        """``meta.json``: an object with ``classes`` (a list of names) and, optionally,
        ``multi_label`` (a JSON boolean)."""
        spec = read_json(path)
        if not isinstance(spec, dict):
            raise AnnotationError(f'{path}: expected a JSON object, got {type(spec).__name__}')
        classes = spec.get('classes')
        if not isinstance(classes, list) or not classes:
            got = repr(classes) if 'classes' in spec else 'no such key'
            raise AnnotationError(f'{path}: key "classes" must be a non-empty list of class '
                                  f'names, got {got}')
        check_classes(classes, f'{path}: key "classes"')  # unique, non-empty strings
        if not isinstance(spec.get('multi_label', False), bool):
            raise AnnotationError(f'{path}: key "multi_label" must be a JSON boolean (true '
                                  f'or false), got {spec["multi_label"]!r}')
        return spec

    def instance_arrays(self, inst, rel: str, inst_file: str) -> dict:
        """``gt_bboxes`` (n, 4) and ``gt_digits`` (n,) of the ``inst_file`` entry of
        ``rel``; a malformed entry is refused naming the file and image."""
        where = f'{inst_file}: entry {rel!r}'
        if not isinstance(inst, dict):
            raise AnnotationError(f'{where} must be an object with "boxes" and "digits", '
                                  f'got {type(inst).__name__}')
        try:
            boxes = np.asarray(inst.get('boxes'), np.float32)
            digits = np.asarray(inst.get('digits'), np.int64)
        except (TypeError, ValueError):
            boxes = digits = None
        if boxes is None or not (boxes.size == 0 or (boxes.ndim == 2 and boxes.shape[1] == 4)) \
                or digits.ndim != 1 or len(digits) != len(boxes):
            raise AnnotationError(f'{where}: expected "boxes" a list of [x1, y1, x2, y2] '
                                  f'number lists and "digits" one integer per box, got '
                                  f'boxes={inst.get("boxes")!r}, digits={inst.get("digits")!r}')
        return dict(gt_bboxes=boxes.reshape(-1, 4), gt_digits=digits)

    def load_data_list(self) -> List[dict]:
        self.require_file(self.ann_file, 'annotation file')
        inst_file = osp.join(self.data_root, f'{self.split}_instances.json')
        self.require_file(inst_file, 'instance file')
        instances = read_json(inst_file)
        if not isinstance(instances, dict):
            raise AnnotationError(f'{inst_file}: expected a JSON object mapping image paths '
                                  f'to their instances, got {type(instances).__name__}')
        data_list = []
        for line_no, rel, label in self.read_annotations(self.spec.get('multi_label', False)):
            if rel not in instances:
                raise AnnotationError(f'{self.ann_file}:{line_no}: {rel!r} has no entry in '
                                      f'{inst_file}')
            inst = instances[rel]
            data_list.append(dict(
                img_path=osp.join(self.data_root, rel), gt_label=label,
                **self.instance_arrays(inst, rel, inst_file),
                target_digit=np.asarray(inst.get('targets', [self.spec.get('target')]),
                                        np.int64)))
        return self.filter_readable(data_list)
