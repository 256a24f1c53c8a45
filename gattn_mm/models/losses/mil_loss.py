import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS


@MODELS.register_module()
class MILLoss(nn.Module):
    """Multiple-instance loss on per-instance logits.

    In an image labelled ``negative_class`` (the "absent" class) *every* instance is
    a clean negative: the dense negatives teach the reader what is not the target
    quickly. Every class ``k`` an image has (one, or several for multi-label data)
    is carried by its instances: the ``topk`` instances with the most evidence for
    ``k``, or, with ``topk=0``, the image's probability of ``k`` is the mean of its
    instances' (``-log mean_n p_n(k)``): every instance gets a share of the gradient
    in proportion to its probability, a soft top-k that bootstraps from an
    untrained reader. An image's loss is the mean over its classes. Without a
    negative class only the second rule applies. Computed in float32.

    Args:
        topk (int): instances of a non-negative image that carry each of its
            classes; 0 for the soft rule. Defaults to 0.
        loss_weight (float): weight. Defaults to 1.
    """

    def __init__(self, topk: int = 0, loss_weight: float = 1.0):
        super().__init__()
        if int(topk) != topk or topk < 0:
            raise ValueError(f'MILLoss.topk must be an int >= 0, got {topk!r}')
        self.topk = int(topk)
        self.loss_weight = float(loss_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                negative_class: Optional[int] = None) -> torch.Tensor:
        """Loss of per-instance logits (B, N, K) for image targets: class indices
        (B,) or 0/1 targets (B, K) (multi-label)."""
        B, N, K = logits.shape
        if targets.dim() == 1:
            targets = F.one_hot(targets.to(logits.device).long(), K)
        targets = targets.to(logits.device, torch.float32)  # (B, K)
        log_p = logits.float().log_softmax(dim=-1)  # (B, N, K)
        if self.topk > 0:  # each class's best instances
            carried = log_p.topk(min(self.topk, N), dim=1).values.mean(dim=1)  # (B, K)
        else:  # log of the mean instance probability
            carried = log_p.logsumexp(dim=1) - math.log(N)  # (B, K)
        loss = -(targets * carried).sum(dim=1) / targets.sum(dim=1).clamp_min(1)  # (B,)
        if negative_class is not None:  # every instance of an "absent" image
            dense = -log_p[..., negative_class].mean(dim=1)
            loss = torch.where(targets[:, negative_class] > 0, dense, loss)
        return self.loss_weight * loss.mean()
