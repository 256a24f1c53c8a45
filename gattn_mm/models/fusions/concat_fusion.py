from typing import Optional

import torch

from mmpretrain.registry import MODELS
from .base_fusion import BaseFusion


@MODELS.register_module()
class ConcatFusion(BaseFusion):
    """The paper's fusion: ``[g, i_1, ..., i_N]``, instances in the selector's rank
    order; (B, C + N*C'). Needs the same N in training and test.

    Args:
        num_instances (int): N, the instances of every image.
    """

    def __init__(self, num_instances: int):
        super().__init__()
        self.num_instances = num_instances

    def out_channels(self, global_channels: int, instance_channels: int) -> int:
        return global_channels + self.num_instances * instance_channels

    def forward(self, global_feat: torch.Tensor, instance_feats: torch.Tensor,
                weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, C), (B, N, C'), (B, N) -> (B, C + N*C')."""
        return torch.cat([global_feat, instance_feats.flatten(1)], dim=1)
