import functools
import math
from typing import Tuple

import torch

from mmpretrain.registry import MODELS
from ..utils import Selection
from .base_selector import CellSelector


@functools.lru_cache(maxsize=8)
def near_cells(grid: Tuple[int, int], min_distance: int, device: torch.device) -> torch.Tensor:
    """(h*w, h*w) float mask, 1 where two cells of the grid are closer than
    ``min_distance`` (Chebyshev distance; cached)."""
    h, w = grid
    rows = torch.arange(h * w, device=device) // w
    cols = torch.arange(h * w, device=device) % w
    dist = torch.maximum((rows[:, None] - rows[None]).abs(),
                         (cols[:, None] - cols[None]).abs())
    return (dist < min_distance).float()


def spaced_topk(probs: torch.Tensor, num: int, grid: Tuple[int, int],
                min_distance: int) -> torch.Tensor:
    """Flat indices (B, num) of the top cells of ``probs`` (B, h*w), greedily at least
    ``min_distance`` cells apart (Chebyshev) when possible; cells repeat when
    ``num`` > h*w."""
    if min_distance <= 1 or num == 1:
        return probs.topk(min(num, probs.size(1)), dim=1).indices.repeat(
            1, math.ceil(num / probs.size(1)))[:, :num]
    near = near_cells(grid, min_distance, probs.device).to(probs.dtype)
    # Every cell has a level: 0 free, 1 blocked (too close to a pick), 2 taken.
    # The argmax of probs - level * span prefers free cells, then blocked ones
    # (when every free cell is gone), then taken ones (N > h*w), each by
    # attention. Few ops per pick, all out of place: cheap and ONNX-exportable.
    span = 1 + (probs.max(dim=1, keepdim=True).values
                - probs.min(dim=1, keepdim=True).values)  # (B, 1)
    level = probs * 0.  # zeros (B, h*w); zeros_like would fold to the traced batch
    picks = []
    for _ in range(num):
        idx = (probs - level * span).argmax(dim=1)  # (B,)
        picks.append(idx)
        level = torch.maximum(level, near[idx])
        level = level.scatter(1, idx[:, None], 2.)  # taken (a value: no traced batch)
    return torch.stack(picks, dim=1)


@MODELS.register_module()
class TopKSelector(CellSelector):
    """The N cells of highest attention, greedily at least ``min_distance`` cells
    apart (Chebyshev distance) while free cells remain. Deterministic; its weights
    are the instances' attention renormalised over the N.

    Args:
        min_distance (int): minimum distance in cells between two instances; 1
            allows neighbours. Defaults to 1.
        centre (str): ``cell`` or ``centroid`` (see :class:`CellSelector`).
    """
    exportable = True

    def __init__(self, min_distance: int = 1, centre: str = 'cell', init_cfg=None):
        super().__init__(centre=centre, init_cfg=init_cfg)
        if int(min_distance) != min_distance or min_distance < 1:
            raise ValueError(f'min_distance must be an int >= 1, got {min_distance!r}')
        self.min_distance = int(min_distance)

    def forward(self, attention: torch.Tensor, num_instances: int) -> Selection:
        probs = attention.flatten(1)  # (B, h*w)
        index = spaced_topk(probs.detach(), num_instances, tuple(attention.shape[-2:]),
                            self.min_distance)
        scores = probs.gather(1, index)  # (B, N)
        weights = scores / scores.sum(1, keepdim=True).clamp_min(1e-12)
        return Selection(centres=self.cell_centres(index, attention), scores=scores,
                         weights=weights, index=index)
