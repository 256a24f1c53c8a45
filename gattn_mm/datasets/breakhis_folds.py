"""BreakHis's patient-disjoint folds and what their splits hold.

:func:`patient_folds` deals the patients to K folds, stratified by class, then
subtype. For fold ``f`` of K, ``test`` is fold ``f``, ``val`` fold ``f + 1`` (mod K)
and ``train`` the other K - 2 (:func:`fold_splits`). A dataset build logs which
patients went to which split with their counts per class, and warns for every
split that lacks a class of the data (:func:`log_splits`): a class with fewer
patients than folds cannot be in every fold.
"""
import logging
from collections import defaultdict
from typing import Callable, Dict, Hashable, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log

SPLITS = ('train', 'val', 'test')
_LOGGED = set()  # folds already logged in this process (train, val, test share them)


def patient_folds(patients: Dict[str, Hashable], num_folds: int,
                  seed: int = 0) -> Dict[str, int]:
    """Patient-disjoint folds stratified by class, then subtype; deterministic for a
    seed.

    The patients, ordered by stratum (shuffled within one by ``seed``), are dealt to
    the folds in turn: every class (and subtype) with at least ``num_folds`` patients
    has some in every fold, and the folds differ in a class's patient count by at
    most one.

    Args:
        patients (dict): patient id -> its stratum, sortable, e.g. ``(1, 'DC')``
            (malignant, subtype): the class first.
        num_folds (int): K.
        seed (int): seed of the order within a stratum. Defaults to 0.

    Returns:
        dict: patient id -> fold index in [0, K).
    """
    rng = np.random.default_rng(seed)
    by_stratum = defaultdict(list)
    for pid, stratum in sorted(patients.items()):
        by_stratum[stratum].append(pid)
    folds, offset = {}, 0
    for stratum in sorted(by_stratum):
        ids = [by_stratum[stratum][i] for i in rng.permutation(len(by_stratum[stratum]))]
        for i, pid in enumerate(ids):
            folds[pid] = (i + offset) % num_folds
        offset += len(ids)  # the next stratum goes on where this one stopped
    return folds


def fold_splits(items: List[dict], folds: Dict[str, int], fold: int,
                num_folds: int) -> Dict[str, List[dict]]:
    """``items`` (with ``patient_id``) by split for fold ``fold`` of ``num_folds``."""
    val_fold = (fold + 1) % num_folds
    splits = {split: [] for split in SPLITS}
    for info in items:
        f = folds[info['patient_id']]
        splits['test' if f == fold else 'val' if f == val_fold else 'train'].append(info)
    return splits


def _counts(items: List[dict], classes: Sequence[str], label_of: Callable) -> str:
    patients, images = defaultdict(set), defaultdict(int)
    for info in items:
        patients[label_of(info)].add(info['patient_id'])
        images[label_of(info)] += 1
    return ', '.join(f'{name} {len(patients[c])} / {images[c]}'
                     for c, name in enumerate(classes) if images[c])


def _missing(items: List[dict], everything: List[dict], label_of: Callable,
             num_folds: Optional[int]) -> Dict[int, str]:
    """Class -> why: the classes of ``everything`` with no image in ``items``."""
    present = {label_of(i) for i in items}
    patients = defaultdict(set)
    for info in everything:
        patients[label_of(info)].add(info['patient_id'])
    return {c: (f'{len(ids)} patient(s) of it in all, fewer than num_folds={num_folds}, '
                f'so only {len(ids)} of the {num_folds} folds hold one'
                if num_folds and len(ids) < num_folds else
                f'none of its {len(ids)} patient(s) was put there')
            for c, ids in sorted(patients.items()) if c not in present}


def log_splits(what: str, splits: Dict[str, List[dict]], classes: Sequence[str],
               label_of: Callable, num_folds: Optional[int] = None,
               everything: Optional[List[dict]] = None) -> None:
    """Log the patients of each split of ``splits`` and their counts per class, and
    warn for each class of the data that a split lacks; once per process for a
    given ``what`` (the train, val and test datasets of a run share their folds).

    Args:
        what (str): the data set and its folds, e.g. ``BreakHis fold 0 of 5 (...)``.
        splits (dict): split -> its items (``patient_id``; labelled by ``label_of``).
        classes (Sequence[str]): the class names, by label.
        label_of (Callable): item -> its class label.
        num_folds (int, optional): K of the folds, to say why a class is missing.
        everything (list, optional): all items (default: those of ``splits``).
    """
    if what in _LOGGED:
        return
    _LOGGED.add(what)
    everything = [i for items in splits.values() for i in items] if everything is None \
        else everything
    lines = [f'{what}: patients per split, and patients / images per class']
    for split, items in splits.items():
        pids = sorted({i['patient_id'] for i in items})
        lines.append(f'  {split}: {len(pids)} patients, {len(items)} images; '
                     f'{_counts(items, classes, label_of) or "no image"}; '
                     f'patients {", ".join(pids)}')
    print_log('\n'.join(lines), logger='current')
    absent = [name for c, name in enumerate(classes)
              if all(label_of(i) != c for i in everything)]
    if absent:
        print_log(f'{what}: no image of class(es) {", ".join(absent)} in the data',
                  logger='current', level=logging.WARNING)
    for split, items in splits.items():
        for c, why in _missing(items, everything, label_of, num_folds).items():
            effect = ('the model is not trained on it' if split == 'train' else
                      'scores that need every class (AUC, its F1) are undefined there')
            print_log(f'{what}: split {split!r} has no image of class {classes[c]!r} '
                      f'({why}): {effect}', logger='current', level=logging.WARNING)
