from abc import ABCMeta, abstractmethod
from typing import Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from ..utils import Selection


class BaseSelector(BaseModule, metaclass=ABCMeta):
    """Chooses N instances of each image from its attention map.

    A selector is one strategy of ``InstanceSampler``; the sampler turns its
    :class:`Selection` (centres in cells) into boxes in input pixels and crops them.
    To add a strategy, subclass this, implement :meth:`forward`, register the class
    in ``mmpretrain.registry.MODELS`` and name it in ``model.sampler.selector``.

    Class attributes:
        exportable (bool): the selector traces to a static ONNX graph (it is
            deterministic and has no data-dependent control flow).
    """
    exportable: bool = False

    @abstractmethod
    def forward(self, attention: torch.Tensor, num_instances: int) -> Selection:
        """Choose ``num_instances`` instances.

        Args:
            attention (Tensor): (B, h, w), sums to 1 over the cells of each image.
            num_instances (int): N.

        Returns:
            Selection: centres (B, N, 2) in cells, scores and weights (B, N).
        """


class CellSelector(BaseSelector):
    """A selector whose instances are cells of the attention map.

    Args:
        centre (str): where an instance is centred: ``cell`` (the chosen cell's
            centre) or ``centroid`` (the attention-weighted centroid of the chosen
            cell and its 8 neighbours, so a structure that straddles cells lands in
            the middle of its box).
    """
    CENTRES = ('cell', 'centroid')

    def __init__(self, centre: str = 'cell', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if centre not in self.CENTRES:
            raise ValueError(f'centre must be one of {self.CENTRES}, got {centre!r}')
        self.centre = centre

    def cell_centres(self, index: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """Centres (B, N, 2) (y, x) in cells of the flat cell indices (B, N)."""
        w = attention.size(-1)
        oy = ox = 0.
        if self.centre == 'centroid':
            oy, ox = centroid_offsets(attention, index)
        return torch.stack([(index // w).float() + 0.5 + oy,
                            (index % w).float() + 0.5 + ox], dim=-1)


def centroid_offsets(attention: torch.Tensor,
                     index: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Offsets (B, N) in cells from each chosen cell (flat ``index`` (B, N)) to the
    attention centroid of its 3x3 neighbourhood in ``attention`` (B, h, w); within
    [-1, 1], no gradient."""
    patches = F.unfold(F.pad(attention.detach()[:, None], (1, 1, 1, 1)), 3)  # (B, 9, hw)
    p = patches.gather(2, index[:, None, :].expand(-1, 9, -1))  # (B, 9, N)
    step = torch.arange(-1., 2., device=attention.device, dtype=attention.dtype)
    dy = step.repeat_interleave(3)[None, :, None]  # row offset of each of the 9
    dx = step.repeat(3)[None, :, None]
    mass = p.sum(1).clamp_min(1e-12)
    return (p * dy).sum(1) / mass, (p * dx).sum(1) / mass
