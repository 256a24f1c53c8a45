import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS


@MODELS.register_module()
class MILLoss(nn.Module):
    """Multiple-instance loss on per-instance logits; its rule follows the label set.

    A presence task has a ``negative_class`` (the "absent" class): in an image of
    that class *every* instance is a clean negative (the dense negatives teach the
    reader what is not the target quickly), and each other class of an image is
    carried by its ``topk`` instances with the most evidence for it (one instance
    makes an image positive; ``topk=0``: the soft rule below). Without a negative
    class every instance is of some class (a majority, a species): the image's
    probability of each of its classes (one, or several for multi-label data) is
    the mean of its instances' (``-log mean_n p_n(k)``), each instance getting a
    share of the gradient in proportion to its probability. An image's loss is the
    mean over its classes. Computed in float32.

    Args:
        topk (int): instances that carry a class of a positive image of a presence
            task; 0 for the soft rule there too. Defaults to 1.
        loss_weight (float): weight. Defaults to 1.
    """

    def __init__(self, topk: int = 1, loss_weight: float = 1.0):
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
        if self.topk > 0 and negative_class is not None:  # each class's best instances
            carried = log_p.topk(min(self.topk, N), dim=1).values.mean(dim=1)  # (B, K)
        else:  # log of the mean instance probability
            carried = log_p.logsumexp(dim=1) - math.log(N)  # (B, K)
        loss = -(targets * carried).sum(dim=1) / targets.sum(dim=1).clamp_min(1)  # (B,)
        if negative_class is not None:  # every instance of an "absent" image
            dense = -log_p[..., negative_class].mean(dim=1)
            loss = torch.where(targets[:, negative_class] > 0, dense, loss)
        return self.loss_weight * loss.mean()
