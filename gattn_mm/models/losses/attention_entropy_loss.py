import torch

from mmpretrain.registry import MODELS
from ..utils import GattnState
from .base_attention_loss import BaseAttentionLoss


@MODELS.register_module()
class AttentionEntropyLoss(BaseAttentionLoss):
    """Minus the mean entropy of the attention over the cells (nats): a positive
    ``loss_weight`` keeps the attention spread, a negative one sharpens it
    (the entropy regulariser of attention sampling, Katharopoulos & Fleuret 2019).

    Args:
        loss_weight (float): weight. Defaults to 1.
    """
    default_name = 'loss_entropy'

    def loss(self, state: GattnState) -> torch.Tensor:
        attn = state.attention.float().flatten(1)  # (B, h*w)
        return (attn * attn.clamp_min(1e-12).log()).sum(dim=1).mean()
