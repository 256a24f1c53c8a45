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
    reader what is not the target quickly). How the instances carry each other
    class of an image is ``positive``:

    - ``noisy_or``: the image holds class k iff some instance does,
      ``P(k) = 1 - prod_n (1 - p_n(k))``. Every instance gets a share of the
      gradient in proportion to how far it already is towards k, so the reader
      learns from all the digits of a positive image from the first step and
      does not need its first guess of "the" instance to be right;
    - ``max``: the one instance with the most evidence for k (``-max_n log
      p_n(k)``); early on that instance is a random digit, and with many
      distractors per image the reader may never take off (docs/recipe.md);
    - ``mean``: the soft rule below.

    How an absent image's instances are scored is ``negative``:

    - ``dense``: each instance a negative of its own (the mean of ``-log
      p_n(absent)``). Beside noisy-OR over N instances this rewards a reader that
      tells nothing apart: every instance at the same small probability q of the
      class satisfies both rules (for N = 32, q = 0.07 costs 0.09 against log 2
      for chance), and a subtle marker may never be learned;
    - ``bag``: the image's likelihood under the same rule as the positive images,
      "no instance holds a class" (``-sum_n log p_n(absent)``, the complement of
      noisy-OR). An instance probability shared by all images then costs at least
      log 2 per image pair, as chance does: only telling the instances apart lowers
      the loss.

    Without a negative class every instance is of some class (a majority, a
    species): the image's probability of each of its classes (one, or several for
    multi-label data) is the mean of its instances' (``-log mean_n p_n(k)``), each
    instance getting a share of the gradient in proportion to its probability.
    An image's loss is the mean over its classes. Computed in float32.

    Args:
        positive (str): the rule of the positive images of a presence task,
            ``noisy_or``, ``max`` or ``mean``. Defaults to ``noisy_or``.
        negative (str): the rule of the absent images, ``dense`` or ``bag``.
            Defaults to ``dense``.
        without_negative (str, optional): the rule without a negative class:
            ``mean`` (above), or None: no loss (zero), for a model whose instances
            are trained by another loss on such label sets and by this one only on
            presence tasks. Defaults to ``mean``.
        loss_weight (float): weight. Defaults to 1.
    """
    RULES = ('noisy_or', 'max', 'mean')

    def __init__(self, positive: str = 'noisy_or', negative: str = 'dense',
                 without_negative: Optional[str] = 'mean', loss_weight: float = 1.0):
        super().__init__()
        if positive not in self.RULES:
            raise ValueError(f'MILLoss.positive must be one of {self.RULES}, '
                             f'got {positive!r}')
        if negative not in ('dense', 'bag'):
            raise ValueError(f"MILLoss.negative must be 'dense' or 'bag', got {negative!r}")
        if without_negative not in ('mean', None):
            raise ValueError(f"MILLoss.without_negative must be 'mean' or None, "
                             f'got {without_negative!r}')
        self.positive = positive
        self.negative = negative
        self.without_negative = without_negative
        self.loss_weight = float(loss_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                negative_class: Optional[int] = None) -> torch.Tensor:
        """Loss of per-instance logits (B, N, K) for image targets: class indices
        (B,) or 0/1 targets (B, K) (multi-label)."""
        if negative_class is None and self.without_negative is None:
            return logits.sum() * 0.  # zero, in the graph (every parameter gets a grad)
        K = logits.size(-1)
        if targets.dim() == 1:
            targets = F.one_hot(targets.to(logits.device).long(), K)
        targets = targets.to(logits.device, torch.float32)  # (B, K)
        log_p = logits.float().log_softmax(dim=-1)  # (B, N, K)
        rule = self.positive if negative_class is not None else 'mean'
        carried = self.carried(log_p, rule)  # (B, K) log P(image holds k)
        loss = -(targets * carried).sum(dim=1) / targets.sum(dim=1).clamp_min(1)  # (B,)
        if negative_class is not None:  # every instance of an "absent" image
            absent = log_p[..., negative_class]  # (B, N)
            absent = absent.sum(dim=1) if self.negative == 'bag' else absent.mean(dim=1)
            loss = torch.where(targets[:, negative_class] > 0, -absent, loss)
        return self.loss_weight * loss.mean()

    @staticmethod
    def carried(log_p: torch.Tensor, rule: str) -> torch.Tensor:
        """log P(the image holds k) (B, K) from instance log-probabilities (B, N, K)."""
        if rule == 'max':
            return log_p.max(dim=1).values
        if rule == 'mean':
            return log_p.logsumexp(dim=1) - math.log(log_p.size(1))
        # noisy-OR: log(1 - prod_n (1 - p_n)), with log(1 - p_n) = log1p(-p_n) kept
        # finite for p_n -> 1 and the product taken as a sum of logs
        log_none = torch.log1p(-log_p.exp().clamp(max=1 - 1e-6)).sum(dim=1)  # (B, K)
        return torch.log((-torch.expm1(log_none)).clamp_min(1e-12))  # finite gradient
