import json
import os
import os.path as osp
import re

import numpy as np
from typing import Any, List, Optional, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from mmpretrain.registry import TRANSFORMS

from .transforms.loading import DEFAULT_MAX_PIXELS, ImageReadError, read_image


class DataRootError(FileNotFoundError):
    """The data root is missing or does not have the expected layout."""


class AnnotationError(ValueError):
    """A line of an annotation file is malformed, points outside the data root or
    holds a label that is not a class."""


# a class index as annotation files write it: ASCII digits, optional minus (no '+1',
# '0_1' or non-ASCII digits, which Python's int() would accept)
LABEL_RE = re.compile(r'-?[0-9]+')


def read_text(path: str) -> str:
    """The text of an annotation file, UTF-8 (a leading byte-order mark, as Excel
    writes it, is dropped); other encodings are refused naming the file."""
    try:
        with open(path, encoding='utf-8-sig', newline='') as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise AnnotationError(f'{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at '
                              f'offset {err.start}); save the file as UTF-8') from None


def read_json(path: str) -> Any:
    """The JSON document of ``path`` (UTF-8); invalid JSON is refused naming the file."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise AnnotationError(f'{path}: invalid JSON at line {err.lineno} column '
                              f'{err.colno}: {err.msg}') from None


def parse_label(text: str) -> int:
    """The integer of ``text`` if it is ASCII ``-?[0-9]+``; ValueError otherwise."""
    if not LABEL_RE.fullmatch(text):
        raise ValueError(text)
    return int(text)


def check_classes(classes: Any, owner: str) -> tuple:
    """``classes`` (class names in class-index order) as a tuple, checked wherever class
    names are read (datasets' ``classes`` and ``metainfo``, ``meta.json``, a checkpoint's
    meta): a list or tuple of unique, non-empty strings.

    Raises:
        AnnotationError (a ValueError): naming ``owner`` (the file and key, or the
            argument) for a single string (it would be one class per character), a dict
            or another container, a name that is not a non-empty string, or a name
            given twice (two outputs of one name: a prediction would be ambiguous).
    """
    rule = 'classes must be a list of class names (unique, non-empty strings)'
    if isinstance(classes, str):
        raise AnnotationError(f'{owner}: {rule}, got the string {classes!r} (it would be '
                              f'one class per character); e.g. {[classes]!r}')
    if not isinstance(classes, (list, tuple)):
        hint = ': list the names in class-index order' if isinstance(classes, dict) else ''
        raise AnnotationError(f'{owner}: {rule}, got a {type(classes).__name__} '
                              f'{_short(classes)}{hint}')
    bad = [(i, c) for i, c in enumerate(classes) if not isinstance(c, str) or not c.strip()]
    if bad:
        raise AnnotationError(f'{owner}: {rule}, got {bad[0][1]!r} at index {bad[0][0]} of '
                              f'{_short(classes)}')
    seen = {}
    for i, name in enumerate(classes):
        if name in seen:
            raise AnnotationError(f'{owner}: {rule}, got {name!r} twice (at indices '
                                  f'{seen[name]} and {i}) in {_short(classes)}')
        seen[name] = i
    return tuple(classes)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def class_names(classes: Any, owner: str) -> Optional[tuple]:
    """``classes`` as a tuple of names, or None when not given (None or empty); see
    :func:`check_classes` for what is refused."""
    if classes is None or (isinstance(classes, (list, tuple)) and not classes):
        return None
    return check_classes(classes, owner)


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

    @classmethod
    def _load_metainfo(cls, metainfo: Optional[dict] = None) -> dict:
        """mmengine's metainfo, its ``classes`` (e.g. from a config's
        ``dataset.metainfo``) checked as :func:`check_classes` does."""
        meta = super()._load_metainfo(metainfo)
        if meta.get('classes') is not None:
            meta['classes'] = check_classes(meta['classes'], f'{cls.__name__} metainfo')
        return meta

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

    def split_annotation_line(self, line: str, line_no: int,
                              multi_label: bool = False) -> Tuple[str, Union[int, List[int]]]:
        """(relative path, label) of a ``relative/path label`` line of ``ann_file``:
        the label is the last field, so the path may hold spaces; the path must stay
        inside ``data_root`` (see ``allow_outside_root``), the label must be an
        integer class index, ASCII ``-?[0-9]+`` (``multi_label``: comma-separated
        indices, e.g. ``1,3,7``)."""
        where = f'{self.ann_file}:{line_no}'
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2:
            raise AnnotationError(f'{where}: expected "path label", got {line.strip()!r}')
        rel, text = parts
        try:
            labels = [parse_label(v) for v in text.split(',')] if multi_label \
                else [parse_label(text)]
        except ValueError:
            raise AnnotationError(f'{where}: label {text!r} is not an integer'
                                  f'{" list" if multi_label else ""} (ASCII digits, e.g. '
                                  f'{"1,3,7" if multi_label else "1"})') from None
        classes = self.metainfo.get('classes') or ()
        for label in labels:
            if not 0 <= label < len(classes):
                raise AnnotationError(f'{where}: label {label} is not a class index in '
                                      f'[0, {len(classes)}) (classes {tuple(classes)})')
        norm = osp.normpath(rel)  # by name: links inside data_root may point elsewhere
        inside = not osp.isabs(rel) and norm != '..' and not norm.startswith('..' + os.sep)
        if not inside and not self.allow_outside_root:
            raise AnnotationError(f'{where}: {rel!r} is outside data_root '
                                  f'{self.data_root!r}; set allow_outside_root=True on the '
                                  f'dataset to allow it')
        return rel, labels if multi_label else labels[0]

    def read_annotations(self, multi_label: bool = False) -> List[tuple]:
        """[(line number, relative path, label)] of the non-blank lines of ``ann_file``
        (UTF-8); refuses an image listed twice (naming both lines) and a file with
        no line."""
        items, seen = [], {}
        for line_no, line in enumerate(read_text(self.ann_file).split('\n'), 1):
            if not line.strip():
                continue
            rel, label = self.split_annotation_line(line, line_no, multi_label)
            key = osp.normpath(rel)
            if key in seen:
                first, first_label = seen[key]
                raise AnnotationError(
                    f'{self.ann_file}:{line_no}: {rel!r} is listed twice (first at line '
                    f'{first} with label {first_label}, here with label {label}); list '
                    f'each image once')
            seen[key] = (line_no, label)
            items.append((line_no, rel, label))
        if not items:
            raise AnnotationError(f'{self.ann_file}: no "path label" line (the annotation '
                                  f'file is empty)')
        return items

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

