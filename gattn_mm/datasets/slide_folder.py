import csv
import io
import os.path as osp
from typing import List, Optional, Sequence

from mmpretrain.registry import DATASETS
from .base_microscopy import (LABEL_RE, AnnotationError, DataRootError, MicroscopyDataset,
                              class_names, read_text)
from .slides import open_slide
from .slides.base import OPENSLIDE_EXTENSIONS, TIFF_EXTENSIONS

SLIDE_EXTENSIONS = ('.ome.tif', '.ome.tiff') + TIFF_EXTENSIONS + OPENSLIDE_EXTENSIONS
SPLITS = ('train', 'val', 'test')  # the split names of a CLAM-style CSV


def sorted_labels(labels) -> List[str]:
    """The labels sorted, numerically when all are integers (``2`` before ``10``)."""
    if all(LABEL_RE.fullmatch(label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


@DATASETS.register_module()
class SlideFolder(MicroscopyDataset):
    """Whole-slide images in a folder with a CSV of labels (the layout CLAM users have).

    ``<data_root>/<ann_file>`` is a CSV with a header holding ``slide_id`` and
    ``label`` (and optionally ``split``); ``<data_root>/<slide_dir>/<slide_id>.<ext>``
    is the slide (pyramidal TIFF / OME-TIFF, or an OpenSlide format). Labels are class
    names (strings); the classes are ``classes`` or, by default, the sorted labels of
    the whole CSV, so every split has the same class indices (numerically sorted when
    every label is an integer: ``2`` before ``10``). The CSV is UTF-8 (a byte-order
    mark, as Excel writes it, is fine); each slide is listed once (in one split). With
    a ``split`` column, every row names a split of ``splits``: an empty or unknown cell
    (``Train``, ``tset``) is refused naming the file and line, never left out of every
    split.
    Slides are read lazily by ``LoadMicroscopyImage(lazy_slides=True)`` and a
    native-resolution model.

    Args:
        data_root (str): the folder.
        ann_file (str): the CSV, relative to ``data_root``. Defaults to ``labels.csv``.
        slide_dir (str): the slides' folder, relative to ``data_root``.
        split (str, optional): keep the rows of this ``split`` (the CSV needs the
            column); None keeps all rows.
        classes (list[str], optional): class names, in class-index order.
        splits (tuple[str], optional): the split names a ``split`` cell may hold
            (default ``train``, ``val``, ``test``); None allows any non-empty name.
    """
    LAYOUT = ('<data_root>/labels.csv (header: slide_id,label[,split]) and '
              '<data_root>/slides/<slide_id>.{tif,svs,ndpi,...}')

    def __init__(self, data_root: str, ann_file: str = 'labels.csv', slide_dir: str = 'slides',
                 split: Optional[str] = None, classes: Optional[List[str]] = None,
                 splits: Optional[Sequence[str]] = SPLITS, pipeline=(), **kwargs):
        self.require_dir(data_root)
        self.split = split
        self.splits = None if splits is None else tuple(splits)
        if split is not None and self.splits is not None and split not in self.splits:
            raise ValueError(f'SlideFolder: split={split!r} is not one of the splits '
                             f'{self.splits} (set splits=... to name others)')
        self.slide_dir = osp.join(data_root, slide_dir)
        self.require_dir(self.slide_dir, 'slide folder')
        csv_path = osp.join(data_root, ann_file)
        self.require_file(csv_path, 'label CSV')
        self.rows = self.read_csv(csv_path)
        classes = class_names(classes, 'SlideFolder') or \
            tuple(sorted_labels({label for _, label, _ in self.rows}))
        super().__init__(data_root=data_root, ann_file=ann_file,
                         metainfo=dict(classes=classes), pipeline=list(pipeline), **kwargs)

    def read_csv(self, path: str) -> List[tuple]:
        """[(line number, label, row)] of the CSV; refuses a missing column or value, a
        row with more or fewer fields than the header and a slide listed twice."""
        reader = csv.DictReader(io.StringIO(read_text(path), newline=''))
        missing = {'slide_id', 'label'} - set(reader.fieldnames or ())
        if missing:
            raise AnnotationError(f'{path}: the header must name slide_id and label '
                                  f'(missing {sorted(missing)}), got {reader.fieldnames}')
        if self.split is not None and 'split' not in reader.fieldnames:
            raise AnnotationError(f'{path}: split={self.split!r} needs a split column')
        rows, seen = [], {}
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise AnnotationError(f'{path}:{line}: expected {len(reader.fieldnames)} '
                                      f'fields ({",".join(reader.fieldnames)}), got {row}')
            slide_id = row['slide_id'].strip()
            if not slide_id or not row['label'].strip():
                raise AnnotationError(f'{path}:{line}: empty slide_id or label: {row}')
            if 'split' in row:
                self.check_split_cell(row['split'].strip(), f'{path}:{line}')
            if slide_id in seen:
                raise AnnotationError(f'{path}:{line}: slide_id {slide_id!r} is listed again '
                                      f'(first at line {seen[slide_id]}); list each slide '
                                      f'once, with one label and one split')
            seen[slide_id] = line
            rows.append((line, row['label'].strip(), row))
        if not rows:
            raise AnnotationError(f'{path}: no slides listed')
        return rows

    def check_split_cell(self, cell: str, where: str) -> None:
        """A ``split`` cell names a split (one of ``splits``); an empty or unknown one
        would leave its slide out of every split."""
        allowed = f'one of {", ".join(self.splits)}' if self.splits else 'a split name'
        if not cell:
            raise AnnotationError(f'{where}: the split cell is empty; expected {allowed} '
                                  f'(a row without a split is in no split)')
        if self.splits is not None and cell not in self.splits:
            raise AnnotationError(f'{where}: split {cell!r} is not {allowed} (set the '
                                  f'dataset\'s splits=... to allow other names)')

    def find_slide(self, slide_id: str, where: str) -> str:
        """The slide file of ``slide_id``: ``<slide_id>`` itself when it has a slide
        extension, else ``<slide_id>.<ext>``; an id naming another file (a ``.json``
        sidecar, ...) is refused."""
        if osp.isabs(slide_id) or osp.normpath(slide_id).startswith('..'):
            raise AnnotationError(f'{where}: slide_id {slide_id!r} is outside the slide folder')
        for ext in ('',) + SLIDE_EXTENSIONS:
            path = osp.join(self.slide_dir, slide_id + ext)
            if osp.isfile(path) and path.lower().endswith(SLIDE_EXTENSIONS):
                return path
        if osp.isfile(osp.join(self.slide_dir, slide_id)):
            raise AnnotationError(f'{where}: slide_id {slide_id!r} names a file that is not a '
                                  f'slide (extensions {", ".join(SLIDE_EXTENSIONS)})')
        raise DataRootError(f'{where}: no slide {slide_id!r} in {self.slide_dir} (tried the '
                            f'extensions {", ".join(SLIDE_EXTENSIONS)})')

    def load_data_list(self) -> List[dict]:
        classes = list(self.metainfo['classes'])
        data_list = []
        for line, label, row in self.rows:
            where = f'{self.ann_file}:{line}'
            if self.split is not None and row.get('split', '').strip() != self.split:
                continue
            if label not in classes:
                raise AnnotationError(f'{where}: label {label!r} is not one of the classes '
                                      f'{tuple(classes)}')
            data_list.append(dict(img_path=self.find_slide(row['slide_id'].strip(), where),
                                  gt_label=classes.index(label)))
        if not data_list:
            splits = sorted({row['split'].strip() for _, _, row in self.rows})
            raise AnnotationError(f'{self.ann_file}: no row has split {self.split!r} (the '
                                  f'splits there: {splits})')
        return self.filter_readable(data_list)

    def check_readable(self, path: str, max_pixels: int) -> None:
        """A slide is opened (header and pyramid checked), no pixel decoded."""
        open_slide(path, max_pixels).close()
