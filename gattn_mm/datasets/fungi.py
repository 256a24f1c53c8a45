import os
import os.path as osp
from typing import List, Optional

from mmpretrain.registry import DATASETS
from .base_microscopy import DataRootError, MicroscopyDataset
from .transforms.loading import IMG_EXTENSIONS


@DATASETS.register_module()
class Fungi(MicroscopyDataset):
    """Microscopic fungi, one folder per species (e.g. DeFungi).

    Layouts: ``<data_root>/<split>/<species>/*.{png,jpg,tif,...}`` (classes are the
    species folders of the ``train`` split, sorted), or an ``ann_file`` with
    ``relative/path label`` lines (then give ``classes``).

    Args:
        data_root (str): data root.
        split (str): ``train``, ``val`` or ``test``.
        ann_file (str, optional): annotation file, relative to ``data_root``.
        classes (list, optional): class names; required with ``ann_file``.
    """
    LAYOUT = ('<data_root>/{train,val,test}/<species>/<image>.{png,jpg,tif}, or '
              '<data_root>/<ann_file> with "relative/path label" lines')

    def __init__(self, data_root: str, split: str = 'train', ann_file: str = '',
                 classes: Optional[List[str]] = None, pipeline=(), **kwargs):
        self.split = split
        self.require_dir(data_root)
        if not ann_file:
            classes = classes or self.find_classes(data_root)
        elif not classes:
            raise ValueError('Fungi: `classes` is required when `ann_file` is given')
        super().__init__(data_root=data_root, ann_file=ann_file,
                         metainfo=dict(classes=tuple(classes)), pipeline=list(pipeline),
                         **kwargs)

    def find_classes(self, data_root: str) -> List[str]:
        train = osp.join(data_root, 'train')
        self.require_dir(train, 'train folder')
        classes = sorted(d for d in os.listdir(train) if osp.isdir(osp.join(train, d)))
        empty = [d for d in classes if not any(n.lower().endswith(IMG_EXTENSIONS)
                                               for n in os.listdir(osp.join(train, d)))]
        if empty:
            raise DataRootError(f'Fungi: species folder(s) {empty} in {train!r} hold no '
                                f'image ({", ".join(IMG_EXTENSIONS)}): add images or '
                                f'remove the folder (it would be a class never seen)')
        if not classes:
            raise DataRootError(f'Fungi: no species folders in {train!r}. Expected '
                                f'layout:\n{self.LAYOUT}')
        return classes

    def load_data_list(self) -> List[dict]:
        if self.ann_file:
            self.require_file(self.ann_file, 'annotation file')
            data_list = []
            with open(self.ann_file) as f:
                for line_no, line in enumerate(f, 1):
                    if line.strip():
                        path, label = self.annotation_item(line, line_no)
                        data_list.append(dict(img_path=path, gt_label=label))
            return self.filter_readable(data_list)
        split_dir = osp.join(self.data_root, self.split)
        self.require_dir(split_dir, f'{self.split} folder')
        unknown = sorted(d for d in os.listdir(split_dir) if osp.isdir(osp.join(split_dir, d))
                         and d not in self.metainfo['classes'])
        if unknown:
            raise DataRootError(f'Fungi: species folder(s) {unknown} in {split_dir!r} are '
                                f'not classes of train/ {list(self.metainfo["classes"])}')
        data_list = []
        for label, species in enumerate(self.metainfo['classes']):
            folder = osp.join(split_dir, species)
            if not osp.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(IMG_EXTENSIONS):
                    data_list.append(dict(img_path=osp.join(folder, name), gt_label=label))
        if not data_list:
            raise DataRootError(f'Fungi: no images in {split_dir!r}. Expected layout:\n'
                                f'{self.LAYOUT}')
        return self.filter_readable(data_list)
