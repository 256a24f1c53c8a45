import torch
from gattn_mm.models import BaseAttentionLoss
from gattn_mm.models.losses.base_attention_loss import kl_to_attention
from mmpretrain.registry import MODELS


@MODELS.register_module()
class CentrePriorLoss(BaseAttentionLoss):
    """KL(Gaussian centre prior || attention): specimens are mostly centred.

    Args:
        sigma (float): width of the prior, in fractions of the image side.
    """
    default_name = 'loss_centre'

    def __init__(self, sigma: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.sigma = sigma

    def loss(self, state) -> torch.Tensor:
        B, h, w = state.attention.shape
        ys = (torch.arange(h, device=state.attention.device) + 0.5) / h - 0.5
        xs = (torch.arange(w, device=state.attention.device) + 0.5) / w - 0.5
        log_prior = -(ys[:, None] ** 2 + xs[None] ** 2) / (2 * self.sigma ** 2)  # (h, w)
        return kl_to_attention(log_prior.flatten().expand(B, -1), state.attention.flatten(1),
                               temperature=1.0)
