import math

import torch

from mmpretrain.registry import MODELS
from ..utils import Selection
from .base_selector import CellSelector


def unbiased_weights(selected: torch.Tensor) -> torch.Tensor:
    """Weights (B, N) of the without-replacement estimator of sum_k a_k f_k.

    ``selected`` (B, N) holds the attention of the N draws in draw order. Estimate k
    is ``sum_{j<k} a_j f_j + (1 - sum_{j<k} a_j) f_k``; their mean gives draw m the
    weight ``((1 - S_{m-1}) + (N - m) a_m) / N``. The weights sum to 1 and carry the
    gradient to the attention (Katharopoulos & Fleuret, 2019).
    """
    n = selected.size(1)
    before = selected.cumsum(dim=1) - selected  # S_{m-1}
    later = torch.arange(n - 1, -1, -1, device=selected.device, dtype=selected.dtype)
    return ((1 - before) + later * selected) / n


@MODELS.register_module()
class SampleSelector(CellSelector):
    """N cells drawn without replacement from the attention distribution
    (Gumbel-top-k); the weights are those of the unbiased without-replacement
    estimator of the attention-weighted mean (attention sampling, Katharopoulos &
    Fleuret, 2019). Random: seeded by torch's generator.

    Args:
        centre (str): ``cell`` or ``centroid`` (see :class:`CellSelector`).
    """

    def forward(self, attention: torch.Tensor, num_instances: int) -> Selection:
        probs = attention.flatten(1)  # (B, h*w)
        n = min(num_instances, probs.size(1))
        uniform = torch.rand_like(probs).clamp_(1e-12, 1 - 1e-12)
        keys = probs.detach().clamp_min(1e-20).log() - (-uniform.log()).log()
        drawn = keys.topk(n, dim=1).indices  # (B, n) distinct cells
        weights = unbiased_weights(probs.gather(1, drawn))
        reps = math.ceil(num_instances / n)
        if reps > 1:  # N > h*w: every cell again, its weight shared by its copies
            drawn, weights = drawn.repeat(1, reps), weights.repeat(1, reps)
            weights = weights[:, :num_instances] / weights[:, :num_instances].sum(
                1, keepdim=True).clamp_min(1e-12)
        index = drawn[:, :num_instances]  # (B, N)
        return Selection(centres=self.cell_centres(index, attention),
                         scores=probs.gather(1, index), weights=weights[:, :num_instances],
                         index=index)
