import os
import os.path as osp

import numpy as np
from typing import List, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from mmpretrain.registry import TRANSFORMS

from .transforms.loading import DEFAULT_MAX_PIXELS, ImageReadError, read_image


class DataRootError(FileNotFoundError):
    """The data root is missing or does not have the expected layout."""


class AnnotationError(ValueError):
    """A line of an annotation file is malformed, points outside the data root or
    holds a label that is not a class."""


class MicroscopyDataset(BaseDataset):
    """Base of gattn-mm's datasets: layout checks and optional skipping of bad files.

    Args:
        skip_invalid (bool): when True, every image is read once while the data
            list is built; unreadable ones are left out, counted and named in the
            log. When False (default), a bad image raises ``ImageReadError`` naming
            it when it is loaded.
        allow_outside_root (bool): let annotation files name images outside
            ``data_root`` (absolute paths, ``..``). Defaults to False: such a line is
            refused with its file and line.
        **kwargs: see ``mmengine.dataset.BaseDataset``.
    """
    LAYOUT = ''  # a human-readable description of the expected layout

    def __init__(self, *args, skip_invalid: bool = False, allow_outside_root: bool = False,
                 pipeline=(), **kwargs):
        self.skip_invalid = skip_invalid
        self.allow_outside_root = allow_outside_root
        self.num_skipped = 0
        self.skipped: List[str] = []
        # build transforms from mmpretrain's registry, as mmpretrain's datasets do
        transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(*args, pipeline=transforms, **kwargs)

    def require_dir(self, path: str, what: str = 'data root') -> None:
        if not osp.isdir(path):
            raise DataRootError(
                f'{type(self).__name__}: {what} {path!r} does not exist. Expected layout:\n'
                f'{self.LAYOUT}')

    def require_file(self, path: str, what: str) -> None:
        if not osp.isfile(path):
            raise DataRootError(
                f'{type(self).__name__}: {what} {path!r} does not exist. Expected layout:\n'
                f'{self.LAYOUT}')

    def annotation_item(self, line: str, line_no: int,
                        multi_label: bool = False) -> Tuple[str, Union[int, List[int]]]:
        """(image path, label) of a ``relative/path label`` line of ``ann_file``:
        the path must stay inside ``data_root`` (see ``allow_outside_root``), the
        label must be an integer class index (``multi_label``: comma-separated
        indices, e.g. ``1,3,7``)."""
        where = f'{self.ann_file}:{line_no}'
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2:
            raise AnnotationError(f'{where}: expected "path label", got {line.strip()!r}')
        rel, text = parts
        try:
            labels = [int(v) for v in text.split(',')] if multi_label else [int(text)]
        except ValueError:
            raise AnnotationError(f'{where}: label {text!r} is not an integer'
                                  f'{" list" if multi_label else ""}') from None
        classes = self.metainfo.get('classes') or ()
        for label in labels:
            if not 0 <= label < len(classes):
                raise AnnotationError(f'{where}: label {label} is not a class index in '
                                      f'[0, {len(classes)}) (classes {tuple(classes)})')
        label = labels if multi_label else labels[0]
        path = osp.join(self.data_root, rel)
        norm = osp.normpath(rel)  # by name: links inside data_root may point elsewhere
        inside = not osp.isabs(rel) and norm != '..' and not norm.startswith('..' + os.sep)
        if not inside and not self.allow_outside_root:
            raise AnnotationError(f'{where}: {rel!r} is outside data_root '
                                  f'{self.data_root!r}; set allow_outside_root=True on the '
                                  f'dataset to allow it')
        return path, label

    def check_readable(self, path: str, max_pixels: int) -> None:
        """Raise ``ImageReadError`` naming ``path`` when it cannot be read (here: the
        image is decoded once)."""
        read_image(path, max_pixels)

    def filter_readable(self, data_list: List[dict]) -> List[dict]:
        """Drop unreadable images when ``skip_invalid``; log how many and which."""
        if not self.skip_invalid:
            return data_list
        limit = next((t.max_pixels for t in getattr(self.pipeline, 'transforms', [])
                      if hasattr(t, 'max_pixels')), DEFAULT_MAX_PIXELS)
        kept = []
        for info in data_list:
            try:
                self.check_readable(info['img_path'], limit)
            except ImageReadError as err:
                self.skipped.append(info['img_path'])
                MMLogger.get_current_instance().warning(f'skip_invalid: {err}')
                continue
            kept.append(info)
        self.num_skipped = len(self.skipped)
        if data_list and not kept:
            raise DataRootError(f'{type(self).__name__}: none of the {len(data_list)} images '
                                f'could be read (skip_invalid=True skipped them all; first: '
                                f'{self.skipped[0]}); see the log for why')
        if self.num_skipped:
            MMLogger.get_current_instance().warning(
                f'{type(self).__name__}: skipped {self.num_skipped} unreadable of '
                f'{len(data_list)} images (skip_invalid=True)')
        return kept

    def get_gt_labels(self) -> np.ndarray:
        return np.array([self.get_data_info(i)['gt_label'] for i in range(len(self))])

    def get_cat_ids(self, idx: int) -> List[int]:
        return [int(v) for v in np.atleast_1d(self.get_data_info(idx)['gt_label'])]

