"""BreakHis's patient-disjoint folds keep every class in every split when the patient
tree allows it, say which split lacks which class when it does not, and log the
patients of each split; the metrics say when a score is undefined on the data."""
import logging
import os
import os.path as osp
from collections import Counter

import numpy as np
import pytest
from mmengine.logging import MMLogger
from PIL import Image

import gattn_mm  # noqa: F401
from gattn_mm.datasets import BreakHis, patient_folds
from gattn_mm.datasets.breakhis import SUBTYPE_NAMES, SUBTYPES
from gattn_mm.evaluation import InstanceLocalization, PatientAccuracy

BENIGN = ('A', 'F', 'PT', 'TA')


def make_tree(root, patients: dict, mag: int = 40) -> dict:
    """A BreakHis tree with ``patients[subtype]`` patients of one image each; returns
    patient id -> class (0 benign, 1 malignant)."""
    breast = osp.join(root, 'BreaKHis_v1', 'histology_slides', 'breast')
    classes = {}
    for s_idx, (sub, count) in enumerate(patients.items()):
        cls = 'benign' if sub in BENIGN else 'malignant'
        for p in range(count):
            pid = f'14-{1000 + 100 * s_idx + p}'
            code = cls[0].upper()
            folder = osp.join(breast, cls, 'SOB', SUBTYPE_NAMES[SUBTYPES.index(sub)],
                              f'SOB_{code}_{sub}_{pid}', f'{mag}X')
            os.makedirs(folder)
            Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(
                osp.join(folder, f'SOB_{code}_{sub}-{pid}-{mag}-001.png'))
            classes[pid] = int(cls == 'malignant')
    return classes


@pytest.fixture()
def logged():
    """The (level, message) of every log record of the current MMLogger."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))
    logger, handler = MMLogger.get_current_instance(), Keep()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def splits_of(root, fold: int, num_folds: int, task: str = 'binary') -> dict:
    """split -> {patient id: set of labels} for ``fold`` of ``num_folds``."""
    out = {}
    for split in ('train', 'val', 'test'):
        ds = BreakHis(root, split=split, fold=fold, num_folds=num_folds, task=task)
        out[split] = {}
        for info in ds.load_data_list():
            out[split].setdefault(info['patient_id'], set()).add(info['gt_label'])
    return out


def test_every_split_holds_both_classes_when_the_tree_allows(tmp_path, logged):
    """5 benign and 5 malignant patients in 4 subtypes, 5 folds: each fold's three
    splits hold both classes (dealing by subtype alone left benign out of two folds),
    disjoint, every patient tested once, the same on every build; no warning."""
    classes = make_tree(tmp_path, {'A': 3, 'DC': 2, 'F': 2, 'LC': 3})
    tested = []
    for fold in range(5):
        splits = splits_of(str(tmp_path), fold, 5)
        for split, patients in splits.items():
            assert set().union(*patients.values()) == {0, 1}, (fold, split)
        train, val, test = (set(splits[s]) for s in ('train', 'val', 'test'))
        assert not train & val and not train & test and not val & test
        assert train | val | test == set(classes)
        tested += sorted(test)
        assert splits == splits_of(str(tmp_path), fold, 5)  # deterministic
    assert sorted(tested) == sorted(classes)
    assert not [m for level, m in logged if level >= logging.WARNING]


def test_fold_sizes_per_class_and_subtype_differ_by_at_most_one():
    """BreakHis's own patient counts per subtype: every fold holds about a fifth of
    each class, and every subtype with at least K patients."""
    counts = dict(A=4, F=10, PT=3, TA=7, DC=38, LC=5, MC=9, PC=6)
    patients = {f'{sub}-{i}': (int(sub not in BENIGN), sub)
                for sub, n in counts.items() for i in range(n)}
    for seed in (0, 1):
        folds = patient_folds(patients, 5, seed)
        assert folds == patient_folds(patients, 5, seed)
        for stratum in (lambda s: s[0], lambda s: s[1]):
            per_fold = Counter((stratum(s), folds[p]) for p, s in patients.items())
            for key in {stratum(s) for s in patients.values()}:
                sizes = [per_fold[key, f] for f in range(5)]
                assert max(sizes) - min(sizes) <= 1, (key, sizes)


def test_a_split_without_a_class_is_named(tmp_path, logged):
    """2 benign patients for 3 folds: the log names the split, the class and why."""
    make_tree(tmp_path, {'A': 2, 'DC': 4})
    splits = splits_of(str(tmp_path), 0, 3)
    lacking = [s for s, patients in splits.items() if 0 not in set().union(*patients.values())]
    assert lacking
    warnings = [m for level, m in logged if level == logging.WARNING]
    for split in lacking:
        assert any(f"split {split!r} has no image of class 'benign'" in m and
                   '2 patient(s) of it in all, fewer than num_folds=3' in m for m in warnings)
    assert not any("class 'malignant'" in m for m in warnings)  # 4 patients: everywhere


def test_the_patients_of_each_split_are_logged_once(tmp_path, logged):
    """Building train, val and test logs one block: the patient ids of each split and
    patients / images per class."""
    classes = make_tree(tmp_path, {'A': 3, 'DC': 3})
    splits = splits_of(str(tmp_path), 1, 3)
    blocks = [m for level, m in logged if 'patients per split' in m]
    assert len(blocks) == 1 and 'fold 1 of 3 (seed 0)' in blocks[0]
    for split, patients in splits.items():
        line, = [ln for ln in blocks[0].splitlines() if ln.strip().startswith(f'{split}:')]
        assert f'{len(patients)} patients' in line
        assert all(pid in line for pid in patients)
        benign = sum(1 for p in patients if classes[p] == 0)
        assert (f'benign {benign} / {benign}' in line) == (benign > 0)


def test_subtypes_with_enough_patients_are_in_every_split(tmp_path, logged):
    make_tree(tmp_path, {'A': 3, 'F': 1, 'DC': 3, 'LC': 3})
    a, f, dc, lc = (SUBTYPES.index(s) for s in ('A', 'F', 'DC', 'LC'))
    for fold in range(3):
        splits = splits_of(str(tmp_path), fold, 3, task='subtype')
        for patients in splits.values():
            assert {a, dc, lc} <= set().union(*patients.values())
    warnings = [m for level, m in logged if level == logging.WARNING]
    assert any("no image of class(es) phyllodes_tumor, tubular_adenoma, "
               "mucinous_carcinoma, papillary_carcinoma in the data" in m for m in warnings)
    assert any("has no image of class 'fibroadenoma'" in m for m in warnings)


def test_patient_accuracy_warns_when_auc_and_f1_are_undefined(logged):
    """One class in the targets: AUC is NaN and F1 of the positive class undefined;
    each is named with why, under the metric's prefix."""
    metric = PatientAccuracy()
    metric.dataset_meta = dict(classes=('benign', 'malignant'))
    scores = np.array([[0.9, 0.1], [0.4, 0.6]])
    out = metric.compute_metrics([dict(patient='p', pred=int(s.argmax()), gt=0, score=s)
                                  for s in scores])
    assert np.isnan(out['auc']) and out['image_accuracy'] == 50
    warnings = [m for level, m in logged if level == logging.WARNING]
    assert any(m.startswith('patient/auc is undefined') and "'malignant'" in m
               for m in warnings)
    assert any(m.startswith('patient/f1 is undefined') for m in warnings)
    logged.clear()
    both = metric.compute_metrics([dict(patient='p', pred=g, gt=g, score=np.eye(2)[g])
                                   for g in (0, 1)])
    assert both['auc'] == 1 and not logged


def test_instance_localization_warns_when_a_score_has_no_sample(logged):
    """No image holds a target digit: target recall and the pointing game are NaN,
    each named with why."""
    out = InstanceLocalization().compute_metrics(
        [dict(target_hits=[], all_hits=[True], holds=[True], point=None, baseline=None)])
    assert np.isnan(out['target_recall']) and np.isnan(out['pointing_game'])
    warnings = [m for level, m in logged if level == logging.WARNING]
    for key in ('target_recall', 'pointing_game', 'pointing_baseline'):
        assert any(m.startswith(f'loc/{key} is undefined') for m in warnings), key
    assert not any('instance_recall' in m or 'box_precision' in m for m in warnings)
