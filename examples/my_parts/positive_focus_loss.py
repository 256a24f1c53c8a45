import torch
from gattn_mm.models import BaseAttentionLoss
from mmpretrain.registry import MODELS


@MODELS.register_module()
class PositiveFocusLoss(BaseAttentionLoss):
    """An attention loss that reads the labels: the entropy of the attention of the
    positive images only (a label other than ``negative_class``), so their attention
    sharpens on what makes them positive; a negative image has nothing to find and
    its attention is left free. The labels are ``state.data_samples``' ``gt_label``.

    Args:
        negative_class (int): the class meaning "absent" (DigitBags: 0, "no 9").
    """
    default_name = 'loss_focus'

    def __init__(self, negative_class: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.negative_class = negative_class

    def loss(self, state) -> torch.Tensor:
        labels = torch.cat([s.gt_label for s in state.data_samples])
        positive = (labels.to(state.attention.device) != self.negative_class).float()
        attn = state.attention.float().flatten(1)  # (B, h*w)
        entropy = -(attn * attn.clamp_min(1e-12).log()).sum(dim=1)  # (B,)
        return (entropy * positive).sum() / positive.sum().clamp_min(1)
