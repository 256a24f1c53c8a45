from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmpretrain.registry import METRICS
from .undefined import metric_key, warn_undefined


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def covered(gt: np.ndarray, boxes: np.ndarray, min_overlap: float) -> np.ndarray:
    """(n,) bool: is each gt box (n, 4) covered by one of ``boxes`` (N, 4)?

    Covered means at least ``min_overlap`` of the gt box's area lies inside one box.
    """
    if len(gt) == 0:
        return np.zeros(0, bool)
    ix1 = np.maximum(gt[:, None, 0], boxes[None, :, 0])
    iy1 = np.maximum(gt[:, None, 1], boxes[None, :, 1])
    ix2 = np.minimum(gt[:, None, 2], boxes[None, :, 2])
    iy2 = np.minimum(gt[:, None, 3], boxes[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[:, None]
    return (inter / np.maximum(area, 1e-9) >= min_overlap).any(axis=1)


@METRICS.register_module()
class InstanceLocalization(BaseMetric):
    """How well the attention finds the target instances (DigitBags).

    Needs predictions with ``boxes`` (N, 4) and ``attention`` (h, w) (from
    ``GatedAttentionClassifier``) and samples with ``gt_bboxes``, ``gt_digits``,
    ``target_digit`` in their metainfo, all in input-tensor pixels.

    Reports:

    - ``target_recall``: share of target digits covered by a sampled box (at least
      ``min_overlap`` of the digit's area inside one box);
    - ``instance_recall``: the same over all digits;
    - ``box_precision``: share of sampled boxes that hold a digit (at least
      ``min_overlap`` of one digit's area inside the box), against clutter;
    - ``pointing_game``: share of images with a target whose attention argmax cell
      overlaps a target digit's box;
    - ``pointing_baseline``: the pointing game of a pointer that lands on a random
      digit of the image (mean share of target digits among its digits).

    A score without a sample (e.g. the pointing game when no image holds a target)
    is NaN, logged as a warning naming it and why.

    Args:
        min_overlap (float): covered share of a digit's area. Defaults to 0.9.
    """
    default_prefix = 'loc'

    def __init__(self, min_overlap: float = 0.9, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.min_overlap = min_overlap

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'boxes' not in sample or 'gt_bboxes' not in sample:
                raise KeyError('InstanceLocalization needs predicted `boxes`/`attention` '
                               '(GatedAttentionClassifier) and `gt_bboxes` in the metainfo '
                               '(DigitBags with PackInputs meta_keys including gt_bboxes)')
            gt = _np(sample['gt_bboxes']).reshape(-1, 4).astype(np.float32)
            digits = _np(sample['gt_digits']).reshape(-1)
            is_target = np.isin(digits, np.atleast_1d(_np(sample['target_digit'])))
            boxes = _np(sample['boxes']).reshape(-1, 4).astype(np.float32)
            hit = covered(gt, boxes, self.min_overlap)
            holds = [bool(covered(gt, box[None], self.min_overlap).any()) for box in boxes]
            point = baseline = None
            if is_target.any():
                attn = _np(sample['attention'])
                h, w = attn.shape
                H, W = sample['img_shape'][:2]
                r, c = np.unravel_index(int(attn.argmax()), attn.shape)
                cell = np.array([[c * W / w, r * H / h, (c + 1) * W / w, (r + 1) * H / h]])
                tg = gt[is_target]
                baseline = float(is_target.mean())
                point = bool(((np.minimum(tg[:, 2], cell[0, 2]) > np.maximum(tg[:, 0], cell[0, 0])) &
                              (np.minimum(tg[:, 3], cell[0, 3]) > np.maximum(tg[:, 1], cell[0, 1]))).any())
            self.results.append(dict(target_hits=hit[is_target].tolist(),
                                     all_hits=hit.tolist(), holds=holds, point=point,
                                     baseline=baseline))

    def compute_metrics(self, results: List[dict]) -> dict:
        target = [h for r in results for h in r['target_hits']]
        every = [h for r in results for h in r['all_hits']]
        holds = [h for r in results for h in r['holds']]
        points = [r['point'] for r in results if r['point'] is not None]
        baselines = [r['baseline'] for r in results if r['baseline'] is not None]
        no_target = 'no image holds a target digit'
        out = {}
        for name, values, why in (('target_recall', target, no_target),
                                  ('instance_recall', every, 'no image holds a digit'),
                                  ('box_precision', holds, 'no box was sampled'),
                                  ('pointing_game', points, no_target),
                                  ('pointing_baseline', baselines, no_target)):
            out[name] = float(np.mean(values)) * 100 if values else float('nan')
            if not values:
                warn_undefined(metric_key(self.prefix, name), why, out[name])
        return out
