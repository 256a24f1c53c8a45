import torch

from mmpretrain.registry import MODELS
from ..utils import GattnState, as_batch, positive_number, zscore
from .base_attention_loss import BaseAttentionLoss, kl_to_attention


@MODELS.register_module()
class ContrastPriorLoss(BaseAttentionLoss):
    """KL(contrast prior || attention) over all cells of each image.

    The prior is hand-made and label-free: the softmax of the z-scored contrast
    (gray standard deviation, :func:`gray_std`) of the full-resolution pixels inside
    each attention cell, at ``temperature``. Structures stand out from a flatter
    background, so the glance learns where the instances are in the first epoch.
    Its cost stays flat as the input grows (a regular subsample of large cells).

    Args:
        loss_weight (float): weight. Defaults to 1.
        temperature (float): softmax temperature of the prior. Defaults to 1.
    """
    default_name = 'loss_prior'

    def __init__(self, loss_weight: float = 1.0, temperature: float = 1.0,
                 loss_name: str = None):
        super().__init__(loss_weight, loss_name)
        self.temperature = positive_number(temperature, 'ContrastPriorLoss.temperature')

    @staticmethod
    def prior(inputs, grid) -> torch.Tensor:
        """Z-scored contrast (B, h*w) of the input (B, 3, H, W), or of any
        ``ImageBatch`` (images at their own sizes: their virtual canvases), in a
        (h, w) grid."""
        return zscore(as_batch(inputs).gray_std(tuple(grid)))

    def loss(self, state: GattnState) -> torch.Tensor:
        attention = state.attention  # (B, h, w)
        prior = self.prior(state.inputs, attention.shape[-2:])
        return kl_to_attention(prior, attention.flatten(1), self.temperature)
