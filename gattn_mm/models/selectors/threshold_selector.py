import math

import torch
import torch.nn.functional as F

from mmpretrain.registry import MODELS
from ..utils import Selection
from .base_selector import BaseSelector
from .topk_selector import spaced_topk


def connected_components(mask: torch.Tensor) -> torch.Tensor:
    """8-connected component labels (B, h, w) of a bool mask (B, h, w); 0 = background."""
    B, h, w = mask.shape
    m = mask[:, None].float()
    labels = (torch.arange(1, h * w + 1, device=mask.device, dtype=torch.float32)
              .view(1, 1, h, w) * m)
    for _ in range(h * w):
        grown = F.max_pool2d(labels, 3, stride=1, padding=1) * m
        if torch.equal(grown, labels):
            break
        labels = grown
    return labels[:, 0].long()


@MODELS.register_module()
class ThresholdSelector(BaseSelector):
    """The paper's key regions: the attention, brought to ``UPSAMPLE`` times the cell
    grid, is thresholded at ``threshold`` x its maximum; the connected regions are
    ranked by attention mass and each instance is the box around one region (the
    sampler makes it at least its box size). When an image has fewer than N
    regions, the remaining slots take its top cells. Deterministic; not ONNX
    exportable (the labelling loop depends on the data). The boxes come from the
    detached map; the masses (scores) keep the gradient.

    Args:
        threshold (float): relative threshold in (0, 1]. Defaults to 0.5.
    """
    UPSAMPLE = 4  # sub-cell resolution of the regions

    def __init__(self, threshold: float = 0.5, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not 0 < threshold <= 1:
            raise ValueError(f'threshold must be in (0, 1], got {threshold!r}')
        self.threshold = float(threshold)

    def forward(self, attention: torch.Tensor, num_instances: int) -> Selection:
        B, h, w = attention.shape
        u = self.UPSAMPLE
        gh, gw = h * u, w * u
        up = F.interpolate(attention[:, None].float(), size=(gh, gw), mode='bilinear',
                           align_corners=False)[:, 0]  # float32 (region masses, AMP)
        up = up / up.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]
        peak = up.detach().flatten(1).max(1).values[:, None, None]
        labels = connected_components(up.detach() >= self.threshold * peak).flatten(1)
        P = gh * gw  # labels are 0..P
        ys = (torch.arange(P, device=up.device) // gw).float().expand(B, P)
        xs = (torch.arange(P, device=up.device) % gw).float().expand(B, P)
        big = torch.full((B, P + 1), float(P), device=up.device)
        small = torch.full((B, P + 1), -1., device=up.device)
        mass = torch.zeros(B, P + 1, device=up.device).scatter_add(1, labels, up.flatten(1))
        y1, x1 = (big.scatter_reduce(1, labels, v, 'amin') for v in (ys, xs))
        y2, x2 = (small.scatter_reduce(1, labels, v, 'amax') + 1 for v in (ys, xs))
        mass[:, 0] = -1  # background is never a region
        n = num_instances
        k = min(n, P + 1)
        top_mass, top = mass.topk(k, dim=1)
        reps = math.ceil(n / k)
        top, top_mass = top.repeat(1, reps)[:, :n], top_mass.repeat(1, reps)[:, :n]
        g = lambda t: t.gather(1, top) / u  # noqa: E731  (sub-cells -> cells)
        centres = torch.stack([(g(y1) + g(y2)) / 2, (g(x1) + g(x2)) / 2], dim=-1)
        extents = torch.stack([g(y2) - g(y1), g(x2) - g(x1)], dim=-1)
        # fewer regions than N: the remaining slots take the top cells
        valid = top_mass > 0  # (B, N)
        slot = torch.arange(n, device=up.device).expand(B, n)
        fill = spaced_topk(attention.detach().flatten(1), n, (h, w), 1)
        fill = fill.gather(1, (slot - valid.sum(1, keepdim=True)).clamp(min=0))
        fill_centres = torch.stack([(fill // w).float() + 0.5, (fill % w).float() + 0.5], -1)
        centres = torch.where(valid[..., None], centres, fill_centres)
        extents = torch.where(valid[..., None], extents, torch.zeros_like(extents))
        scores = torch.where(valid, top_mass, attention.flatten(1).gather(1, fill))
        weights = scores / scores.sum(1, keepdim=True).clamp_min(1e-12)
        return Selection(centres=centres.detach(), scores=scores, weights=weights,
                         extents=extents.detach())
