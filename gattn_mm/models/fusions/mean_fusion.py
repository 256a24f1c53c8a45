import torch
import torch.nn as nn

from mmpretrain.registry import MODELS


@MODELS.register_module()
class MeanFusion(nn.Module):
    """``[g, mean_n i_n]``, (B, C + C'): the instances averaged, unweighted."""
    num_instances = None  # any N

    def out_channels(self, global_channels: int, instance_channels: int) -> int:
        return global_channels + instance_channels

    def forward(self, global_feat: torch.Tensor, instance_feats: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """(B, C), (B, N, C'), (B, N) -> (B, C + C')."""
        return torch.cat([global_feat, instance_feats.mean(dim=1)], dim=1)
