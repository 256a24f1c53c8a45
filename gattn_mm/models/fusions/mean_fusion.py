import torch

from mmpretrain.registry import MODELS
from .base_fusion import BaseFusion


@MODELS.register_module()
class MeanFusion(BaseFusion):
    """``[g, mean_n i_n]``, (B, C + C'): the instances averaged, unweighted."""

    def forward(self, global_feat: torch.Tensor, instance_feats: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """(B, C), (B, N, C'), (B, N) -> (B, C + C')."""
        return torch.cat([global_feat, instance_feats.mean(dim=1)], dim=1)
