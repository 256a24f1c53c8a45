from abc import ABCMeta, abstractmethod
from typing import Optional

import torch
import torch.nn as nn


class BaseFusion(nn.Module, metaclass=ABCMeta):
    """Global feature ⊕ instance features -> one vector, the ``fusion`` of
    ``FusionHead``.

    Subclass it, implement :meth:`forward`, register the class in mmpretrain's
    ``MODELS`` registry and name it in ``model.head.fusion``.

    Class attributes (the contract ``FusionHead`` and the classifier read):
        num_instances (int, optional): the N the fusion needs in training and at test
            time (checked when the model is built), or None for any N.
        needs_channels (bool): the constructor takes ``instance_channels`` (C'),
            given by ``FusionHead``: set it for a fusion with learned layers.
    """
    num_instances: Optional[int] = None
    needs_channels: bool = False

    def out_channels(self, global_channels: int, instance_channels: int) -> int:
        """Width of the fused vector for C global and C' instance channels; by
        default C + C' (the global feature and one pooled instance feature)."""
        return global_channels + instance_channels

    @abstractmethod
    def forward(self, global_feat: torch.Tensor, instance_feats: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """(B, C) global feature, (B, N, C') instance features, (B, N) the sampler's
        weights (summing to 1 over N) -> (B, ``out_channels(C, C')``)."""

    def instance_weights(self, instance_feats: torch.Tensor,
                         weights: torch.Tensor) -> Optional[torch.Tensor]:
        """The weights (B, N) this fusion gives the instances, when it learns its
        own (predictions report them as ``fusion_weights``); None by default."""
        return None


def weighted_fusion(global_feat: torch.Tensor, instance_feats: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
    """``[g, sum_n w_n i_n]``: (B, C), (B, N, C'), (B, N) -> (B, C + C')."""
    return torch.cat([global_feat, torch.einsum('bn,bnc->bc', weights, instance_feats)],
                     dim=1)
