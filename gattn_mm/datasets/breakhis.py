import csv
import io
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Union

from mmpretrain.registry import DATASETS
from .base_microscopy import (LABEL_RE, AnnotationError, DataRootError, MicroscopyDataset,
                              read_text)
from .breakhis_folds import fold_splits, log_splits, patient_folds

SUBTYPES = ('A', 'F', 'PT', 'TA', 'DC', 'LC', 'MC', 'PC')
SUBTYPE_NAMES = ('adenosis', 'fibroadenoma', 'phyllodes_tumor', 'tubular_adenoma',
                 'ductal_carcinoma', 'lobular_carcinoma', 'mucinous_carcinoma',
                 'papillary_carcinoma')
MAGNIFICATIONS = (40, 100, 200, 400)
# SOB_B_A-14-22549AB-40-001.png: class, subtype, year-slide (the patient), mag, seq
NAME_RE = re.compile(
    r'^SOB_(?P<cls>[BM])_(?P<sub>[A-Z]+)-(?P<patient>\d+-[0-9A-Za-z]+)-'
    r'(?P<mag>\d+)-(?P<seq>\d+)\.png$', re.IGNORECASE)


def parse_breakhis_name(filename: str) -> Dict[str, Union[str, int]]:
    """Parse a BreakHis file name into class, subtype, patient id and magnification."""
    m = NAME_RE.match(osp.basename(filename))
    if m is None:
        raise ValueError(f'{filename!r} is not a BreakHis image name like '
                         f'SOB_B_A-14-22549AB-40-001.png')
    sub = m['sub'].upper()
    if sub not in SUBTYPES:
        raise ValueError(f'{filename!r}: unknown subtype {sub!r}, expected one of {SUBTYPES}')
    return dict(malignant=int(m['cls'].upper() == 'M'), subtype=sub,
                patient_id=m['patient'], magnification=int(m['mag']), seq=int(m['seq']))


def check_folders(info: dict, rel_dir: str) -> None:
    """Refuse an image whose name (class, subtype, patient, magnification) disagrees
    with a folder of its path ``rel_dir`` (relative to ``.../breast``): the folders
    of the public layout that are present are compared, e.g.
    ``benign/SOB/adenosis/SOB_B_A_14-22549AB/40X``."""
    code = 'M' if info['malignant'] else 'B'
    expected = {'class': 'malignant' if info['malignant'] else 'benign',
                'subtype': SUBTYPE_NAMES[SUBTYPES.index(info['subtype'])],
                'patient': f'SOB_{code}_{info["subtype"]}_{info["patient_id"]}',
                'magnification': f'{info["magnification"]}X'}
    for folder in rel_dir.split(os.sep):
        kind = ('class' if folder.lower() in ('benign', 'malignant') else
                'subtype' if folder.lower() in SUBTYPE_NAMES else
                'patient' if folder.upper().startswith('SOB_') else
                'magnification' if re.fullmatch(r'\d+X', folder, re.IGNORECASE) else None)
        if kind and folder.lower() != expected[kind].lower():
            raise AnnotationError(f'{info["img_path"]}: the file name says {kind} '
                                  f'{expected[kind]!r} but its folder is {folder!r}')


@DATASETS.register_module()
class BreakHis(MicroscopyDataset):
    """BreakHis (Spanhol et al., 2016) in its public layout.

    Every sample carries ``patient_id`` and ``magnification`` for
    ``PatientAccuracy``.

    Args:
        data_root (str): the folder holding ``BreaKHis_v1`` (or any folder below it
            down to ``.../breast``).
        split (str): ``train``, ``val`` or ``test``. With our patient-disjoint folds
            (stratified by class, then subtype: :func:`patient_folds`), ``test`` is
            fold ``fold``, ``val`` is fold ``fold + 1`` (mod K) and ``train`` the
            rest. With ``folds_file``, ``train``/``test`` are its ``grp`` column and
            ``val`` is its test group. The build logs the patients of each split
            with their counts per class, and warns for a split without a class.
        magnification (int | str | list): 40, 100, 200, 400, several, or ``'all'``.
        task (str): ``binary`` (benign/malignant) or ``subtype`` (8 classes).
        num_folds (int): K of the patient-disjoint folds. Defaults to 5.
        fold (int): 0-based fold index. Defaults to 0.
        seed (int): seed of the fold assignment. Defaults to 0.
        folds_file (str, optional): the circulating ``Folds.csv`` (columns fold 1-5,
            mag, grp, filename); note it is not guaranteed to be patient-disjoint.
    """
    LAYOUT = ('<data_root>/BreaKHis_v1/histology_slides/breast/{benign,malignant}/SOB/'
              '<subtype>/SOB_B_A_14-22549AB/<40X|100X|200X|400X>/SOB_B_A-14-22549AB-40-001.png')

    def __init__(self, data_root: str, split: str = 'train',
                 magnification: Union[int, str, Sequence[int]] = 'all',
                 task: str = 'binary', num_folds: int = 5, fold: int = 0, seed: int = 0,
                 folds_file: Optional[str] = None, pipeline=(), **kwargs):
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if task not in ('binary', 'subtype'):
            raise ValueError(f"task must be 'binary' or 'subtype', got {task!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (fold, num_folds)) \
                or not 0 <= fold < num_folds or num_folds < 2:
            raise ValueError(f'fold must be an integer in [0, num_folds) with an integer '
                             f'num_folds >= 2, got fold={fold!r}, num_folds={num_folds!r}')
        self.split, self.task = split, task
        self.magnifications = self._parse_mags(magnification)
        self.num_folds, self.fold, self.seed = num_folds, fold, seed
        self.folds_file = folds_file
        classes = ('benign', 'malignant') if task == 'binary' else SUBTYPE_NAMES
        super().__init__(data_root=data_root, metainfo=dict(classes=classes),
                         pipeline=list(pipeline), **kwargs)

    @staticmethod
    def _parse_mags(value) -> tuple:
        if value in ('all', None):
            return MAGNIFICATIONS
        values = [value] if isinstance(value, (int, str)) else list(value)
        mags = tuple(int(str(v).upper().rstrip('X')) for v in values)
        bad = [m for m in mags if m not in MAGNIFICATIONS]
        if bad:
            raise ValueError(f'magnification must be among {MAGNIFICATIONS} or "all", got {bad}')
        return mags

    def breast_dir(self) -> str:
        self.require_dir(self.data_root)
        for sub in ('BreaKHis_v1/histology_slides/breast', 'histology_slides/breast',
                    'breast', ''):
            path = osp.join(self.data_root, sub)
            if osp.isdir(osp.join(path, 'benign')) or osp.isdir(osp.join(path, 'malignant')):
                return path
        raise DataRootError(f'BreakHis: no benign/ or malignant/ folder under '
                            f'{self.data_root!r}. Expected layout:\n{self.LAYOUT}')

    def scan(self) -> List[dict]:
        """Every image under the data root with its parsed fields (sorted); a file whose
        name disagrees with its folders is refused, hidden entries (``.x``, macOS
        ``._x.png``) are left out."""
        root = self.breast_dir()
        items = []
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith('.')]
            for name in files:
                if name.lower().endswith('.png') and not name.startswith('.'):
                    info = parse_breakhis_name(osp.join(dirpath, name))
                    info['img_path'] = osp.join(dirpath, name)
                    check_folders(info, osp.relpath(dirpath, root))
                    items.append(info)
        if not items:
            raise DataRootError(f'BreakHis: no images under {root!r}. Expected layout:\n'
                                f'{self.LAYOUT}')
        return sorted(items, key=lambda i: i['img_path'])

    def label_of(self, info: dict) -> int:
        """The class label of a scanned image for ``task``."""
        return info['malignant'] if self.task == 'binary' else SUBTYPES.index(info['subtype'])

    def describe(self) -> str:
        """The data and the folds of this dataset, as its log lines name them."""
        mags = '/'.join(str(m) for m in self.magnifications)
        folds = (f'{self.folds_file} fold {self.fold + 1}' if self.folds_file else
                 f'fold {self.fold} of {self.num_folds} (seed {self.seed})')
        return f'BreakHis {self.breast_dir()} {folds}, magnification {mags}, task {self.task}'

    def _select_split(self, items: List[dict]) -> List[dict]:
        classes = self.metainfo['classes']
        if self.folds_file:
            selected = self._select_by_csv(items)
            log_splits(f'{self.describe()}, split {self.split}', {self.split: selected},
                       classes, self.label_of, everything=items)
            return selected
        folds = patient_folds({i['patient_id']: (i['malignant'], i['subtype'])
                               for i in items}, self.num_folds, self.seed)
        splits = fold_splits(items, folds, self.fold, self.num_folds)
        log_splits(self.describe(), splits, classes, self.label_of, self.num_folds)
        return splits[self.split]

    def _select_by_csv(self, items: List[dict]) -> List[dict]:
        self.require_file(self.folds_file, 'folds file')
        grp = 'train' if self.split == 'train' else 'test'
        wanted = set()
        reader = csv.DictReader(io.StringIO(read_text(self.folds_file), newline=''))
        missing = {'fold', 'mag', 'grp', 'filename'} - set(reader.fieldnames or [])
        if missing:
            raise AnnotationError(f'{self.folds_file}: missing columns {sorted(missing)}; '
                                  f'expected fold, mag, grp, filename')
        for row in reader:
            if None in row.values() or not LABEL_RE.fullmatch(row['fold'].strip()):
                raise AnnotationError(f'{self.folds_file}:{reader.line_num}: expected an '
                                      f'integer fold and the columns '
                                      f'{",".join(reader.fieldnames)}, got {row}')
            if int(row['fold']) == self.fold + 1 and row['grp'].strip() == grp:
                wanted.add(osp.basename(row['filename'].strip()))
        return [i for i in items if osp.basename(i['img_path']) in wanted]

    def load_data_list(self) -> List[dict]:
        items = [i for i in self.scan() if i['magnification'] in self.magnifications]
        if not items:
            raise DataRootError(f'BreakHis: no images at magnification '
                                f'{self.magnifications} under {self.breast_dir()!r}')
        patients = len({i['patient_id'] for i in items})
        if not self.folds_file and patients < self.num_folds:
            raise DataRootError(f'BreakHis: {patients} patient(s) at magnification '
                                f'{self.magnifications}, fewer than num_folds='
                                f'{self.num_folds}: lower num_folds or add data')
        selected = self._select_split(items)
        if not selected:
            raise DataRootError(f'BreakHis: split {self.split!r} is empty (fold={self.fold}, '
                                f'num_folds={self.num_folds}, folds_file={self.folds_file}, '
                                f'magnification {self.magnifications})')
        data_list = [dict(img_path=info['img_path'], gt_label=self.label_of(info),
                          patient_id=info['patient_id'], magnification=info['magnification'])
                     for info in selected]
        return self.filter_readable(data_list)
