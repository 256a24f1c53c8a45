from collections import defaultdict
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmpretrain.registry import METRICS
from .undefined import class_name, metric_key, warn_undefined


@METRICS.register_module()
class PatientAccuracy(BaseMetric):
    """Image- and patient-level scores (BreakHis convention).

    - ``image_accuracy``: share of images classified correctly;
    - ``patient_accuracy``: the patient recognition rate, the mean over patients of
      the share of each patient's images classified correctly;
    - ``f1``: F1 of class 1 for two classes, macro F1 otherwise;
    - ``auc``: ROC AUC of class 1 for two classes, macro one-vs-rest otherwise
      (NaN when a class is missing from the ground truth).

    A score the data leave undefined (AUC, or F1, when the targets lack a class) is
    logged as a warning naming it and why.

    Samples need ``patient_id`` in their metainfo (``BreakHis`` provides it).
    All values are percentages except ``auc`` (0-1).
    """
    default_prefix = 'patient'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'patient_id' not in sample:
                raise KeyError('PatientAccuracy needs `patient_id` in each sample\'s '
                               'metainfo (add it to PackInputs meta_keys)')
            score = sample['pred_score']
            score = score.cpu().numpy() if isinstance(score, torch.Tensor) else np.asarray(score)
            self.results.append(dict(patient=str(sample['patient_id']),
                                     pred=int(np.asarray(sample['pred_label']).reshape(-1)[0]),
                                     gt=int(np.asarray(sample['gt_label']).reshape(-1)[0]),
                                     score=score.astype(np.float64)))

    @staticmethod
    def calculate(patients: Sequence[str], preds: Sequence[int], gts: Sequence[int],
                  scores: Optional[np.ndarray] = None, prefix: Optional[str] = 'patient',
                  classes: Optional[Sequence[str]] = None) -> dict:
        """The scores of the class docstring; a score the data leave undefined (AUC
        or F1 without a target of a class) is logged as a warning naming it
        (``<prefix>/<score>``, the classes named by ``classes``) and why."""
        from sklearn.metrics import f1_score, roc_auc_score
        preds, gts = np.asarray(preds), np.asarray(gts)
        correct = preds == gts
        per_patient = defaultdict(list)
        for pid, ok in zip(patients, correct):
            per_patient[pid].append(ok)
        out = dict(image_accuracy=float(correct.mean() * 100),
                   patient_accuracy=float(np.mean([np.mean(v) for v in
                                                   per_patient.values()]) * 100))
        num_classes = scores.shape[1] if scores is not None else int(max(preds.max(), gts.max()) + 1)
        binary = num_classes == 2
        absent = [class_name(c, classes) for c in range(num_classes) if c not in set(gts)]
        out['f1'] = float(f1_score(gts, preds, average='binary' if binary else 'macro',
                                   zero_division=0) * 100)
        if absent and (not binary or 1 not in set(gts)):
            warn_undefined(metric_key(prefix, 'f1'), (
                f'no target of class {class_name(1, classes)}, the positive class' if binary
                else f'no target of class(es) {", ".join(absent)}: the macro mean covers '
                f'the classes with targets or predictions only'), out['f1'])
        auc = float('nan')
        if scores is not None and not absent:
            auc = float(roc_auc_score(gts, scores[:, 1]) if binary else
                        roc_auc_score(gts, scores, multi_class='ovr', average='macro'))
        elif scores is None:
            warn_undefined(metric_key(prefix, 'auc'), 'no prediction scores given', auc)
        else:
            warn_undefined(metric_key(prefix, 'auc'), f'ROC AUC needs a target of every '
                           f'class, none of class(es) {", ".join(absent)}', auc)
        out['auc'] = auc
        return out

    def compute_metrics(self, results: List[dict]) -> dict:
        return self.calculate([r['patient'] for r in results], [r['pred'] for r in results],
                              [r['gt'] for r in results], np.stack([r['score'] for r in results]),
                              self.prefix, (self.dataset_meta or {}).get('classes'))
