import os
import os.path as osp
from typing import List, Optional

from mmpretrain.registry import DATASETS
from .base_microscopy import DataRootError, MicroscopyDataset, class_names
from .transforms.loading import IMG_EXTENSIONS


def visible(path: str) -> List[str]:
    """The entries of ``path`` whose names do not start with ``.``."""
    return [n for n in os.listdir(path) if not n.startswith('.')]


@DATASETS.register_module()
class Fungi(MicroscopyDataset):
    """Microscopic fungi, one folder per species (e.g. DeFungi).

    Layouts: ``<data_root>/<split>/<species>/*.{png,jpg,tif,...}`` (classes are the
    species folders of the ``train`` split, sorted), or an ``ann_file`` with
    ``relative/path label`` lines (then give ``classes``). Hidden entries (names
    starting with ``.``: ``.thumbs/``, macOS ``._x.png``) are not species or images.

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
            classes = class_names(classes, 'Fungi') or self.find_classes(data_root)
        elif not class_names(classes, 'Fungi'):
            raise ValueError('Fungi: `classes` is required when `ann_file` is given')
        super().__init__(data_root=data_root, ann_file=ann_file,
                         metainfo=dict(classes=tuple(classes)), pipeline=list(pipeline),
                         **kwargs)

    @staticmethod
    def folders(path: str) -> List[str]:
        """The sorted sub-folders of ``path``, hidden ones left out."""
        return sorted(d for d in visible(path) if osp.isdir(osp.join(path, d)))

    @staticmethod
    def images(path: str) -> List[str]:
        """The sorted image names in ``path``, hidden ones left out."""
        return sorted(n for n in visible(path) if n.lower().endswith(IMG_EXTENSIONS))

    def find_classes(self, data_root: str) -> List[str]:
        train = osp.join(data_root, 'train')
        self.require_dir(train, 'train folder')
        classes = self.folders(train)
        empty = [d for d in classes if not self.images(osp.join(train, d))]
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
            data_list = [dict(img_path=osp.join(self.data_root, rel), gt_label=label)
                         for _, rel, label in self.read_annotations()]
            return self.filter_readable(data_list)
        split_dir = osp.join(self.data_root, self.split)
        self.require_dir(split_dir, f'{self.split} folder')
        unknown = [d for d in self.folders(split_dir) if d not in self.metainfo['classes']]
        if unknown:
            raise DataRootError(f'Fungi: species folder(s) {unknown} in {split_dir!r} are '
                                f'not classes of train/ {list(self.metainfo["classes"])}')
        data_list = []
        for label, species in enumerate(self.metainfo['classes']):
            folder = osp.join(split_dir, species)
            if not osp.isdir(folder):
                continue
            data_list += [dict(img_path=osp.join(folder, name), gt_label=label)
                          for name in self.images(folder)]
        if not data_list:
            raise DataRootError(f'Fungi: no images in {split_dir!r}. Expected layout:\n'
                                f'{self.LAYOUT}')
        return self.filter_readable(data_list)
