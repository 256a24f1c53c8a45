from abc import ABCMeta, abstractmethod

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils import GattnState


class BaseAttentionLoss(nn.Module, metaclass=ABCMeta):
    """A loss on the attention of a gattn model, one entry of the classifier's
    ``attention_losses`` list.

    Subclasses implement :meth:`loss` on a :class:`GattnState`; the result is
    multiplied by ``loss_weight`` and logged as ``loss_name``. Set
    ``needs_evidence = True`` when the loss reads ``state.evidence`` (the instance
    head's evidence); the classifier then checks at build time that there is an
    instance head.

    Args:
        loss_weight (float): weight of the loss. Defaults to 1.
        loss_name (str, optional): key in the loss dict (must start with ``loss``).
    """
    needs_evidence: bool = False
    default_name: str = 'loss_attention'

    def __init__(self, loss_weight: float = 1.0, loss_name: str = None):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.loss_name = loss_name or self.default_name
        if not self.loss_name.startswith('loss'):
            raise ValueError(f'{type(self).__name__}.loss_name must start with "loss" (so '
                             f'the optimiser sums it), got {self.loss_name!r}')

    @abstractmethod
    def loss(self, state: GattnState) -> torch.Tensor:
        """The unweighted loss (a scalar)."""

    def forward(self, state: GattnState) -> torch.Tensor:
        return self.loss_weight * self.loss(state)


def kl_to_attention(target_scores: torch.Tensor, attention: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """KL(softmax(target_scores / T) || q), batch mean, in float32 (AMP-safe), where q
    is ``attention`` renormalised over its M items.

    Args:
        target_scores (Tensor): (B, M) teacher scores (no gradient).
        attention (Tensor): (B, M) attention of the M items (all cells, or the N
            instances).
    """
    target = (target_scores.float() / temperature).softmax(dim=1)
    log_q = attention.float().clamp_min(1e-12).log().log_softmax(dim=1)
    return F.kl_div(log_q, target, reduction='batchmean')
