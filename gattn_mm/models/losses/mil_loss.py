import math
from typing import Optional

import torch
import torch.nn as nn

from mmpretrain.registry import MODELS


@MODELS.register_module()
class MILLoss(nn.Module):
    """Multiple-instance loss on per-instance logits.

    In an image labelled ``negative_class`` (the "absent" class) *every* instance is
    a clean negative: the dense negatives teach the reader what is not the target
    quickly. In any other image the ``topk`` instances with the most evidence for
    its class carry its label, or, with ``topk=0``, the image's probability is the
    mean of its instances' probabilities (``-log mean_n p_n(y)``): every instance
    gets a share of the gradient in proportion to its probability, a soft top-k
    that bootstraps from an untrained reader. Without a negative class only the
    second rule applies. Computed in float32.

    Args:
        topk (int): instances of a non-negative image that get its label; 0 for the
            soft rule. Defaults to 0.
        loss_weight (float): weight. Defaults to 1.
    """

    def __init__(self, topk: int = 0, loss_weight: float = 1.0):
        super().__init__()
        if int(topk) != topk or topk < 0:
            raise ValueError(f'MILLoss.topk must be an int >= 0, got {topk!r}')
        self.topk = int(topk)
        self.loss_weight = float(loss_weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor,
                negative_class: Optional[int] = None) -> torch.Tensor:
        """Loss of per-instance logits (B, N, K) for image labels (B,)."""
        B, N, K = logits.shape
        labels = labels.to(logits.device)
        log_p = logits.float().log_softmax(dim=-1)
        own = log_p.gather(2, labels.view(B, 1, 1).expand(B, N, 1))[..., 0]  # (B, N)
        if self.topk > 0:  # the image's best instances
            top = own.topk(min(self.topk, N), dim=1).values.mean(dim=1)
        else:  # log of the mean instance probability
            top = own.logsumexp(dim=1) - math.log(N)
        if negative_class is None:
            return -self.loss_weight * top.mean()
        dense = own.mean(dim=1)  # every instance of a negative image
        return -self.loss_weight * torch.where(labels == negative_class, dense, top).mean()
