import torch

from mmpretrain.registry import MODELS
from ..utils import GatedAttention
from .base_fusion import BaseFusion, weighted_fusion


@MODELS.register_module()
class GatedInstanceFusion(GatedAttention, BaseFusion):
    """``[g, sum_n a_n i_n]``, (B, C + C'), with a learned gated attention over the
    instances (Ilse et al., 2018; the layer of ``GatedAttentionNeck``) added to the
    sampler's: ``a = softmax_n(w^T (tanh(V i_n) * sigmoid(U i_n)) + log w_n)``.

    The fused classifier chooses which instances decide from what the reader found
    in them: one instance for a presence task, the instances of one kind for a
    majority or a species task. Through ``log w_n`` its loss also reaches the
    glance's attention. :class:`FusionHead` passes ``instance_channels``.

    Args:
        instance_channels (int): C', channels of an instance feature.
        hidden_channels (int): size of the hidden attention layer. Defaults to 128.
    """
    needs_channels = True  # FusionHead passes instance_channels

    def __init__(self, instance_channels: int, hidden_channels: int = 128):
        super().__init__(instance_channels, hidden_channels)

    def instance_weights(self, instance_feats: torch.Tensor,
                         weights: torch.Tensor) -> torch.Tensor:
        """Fused weights (B, N) of instance features (B, N, C') and sampler weights
        (B, N); they sum to 1 over N."""
        logits = self.gated_logits(instance_feats).float()  # (B, N)
        return (logits + weights.float().clamp_min(1e-12).log()).softmax(dim=1)

    def forward(self, global_feat: torch.Tensor, instance_feats: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """(B, C), (B, N, C'), (B, N) -> (B, C + C')."""
        a = self.instance_weights(instance_feats, weights).to(instance_feats.dtype)
        return weighted_fusion(global_feat, instance_feats, a)
