import torch

from mmpretrain.registry import MODELS
from .base_fusion import BaseFusion, weighted_fusion


@MODELS.register_module()
class AttentionFusion(BaseFusion):
    """``[g, sum_n w_n i_n]``, (B, C + C'): the instances weighted by the sampler's
    fusion weights, so the loss also reaches the attention through them."""

    def forward(self, global_feat: torch.Tensor, instance_feats: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """(B, C), (B, N, C'), (B, N) -> (B, C + C')."""
        return weighted_fusion(global_feat, instance_feats, weights)
