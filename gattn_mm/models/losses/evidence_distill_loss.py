from typing import Optional

import torch

from mmpretrain.registry import MODELS
from ..utils import GattnState, gray_std, zscore
from .base_attention_loss import BaseAttentionLoss, kl_to_attention


@MODELS.register_module()
class EvidenceDistillLoss(BaseAttentionLoss):
    """KL(teacher || attention) over the N sampled instances of each image.

    The teacher is what the reader found: the instance head's evidence of each
    instance (``InstanceHead.evidence``), softened
    by ``temperature``; the attention (renormalised over the N) learns to rank
    cells as the full-resolution crops do. With ``with_contrast`` the teacher is the
    sum of the z-scored evidence and the z-scored contrast of the crops
    (:func:`gray_std`, label-free):
    contrast finds the structures before the reader knows any class, evidence
    ranks them later; the contrast is scaled by ``prior_scale``
    (``PriorAnnealHook`` fades it).

    Args:
        loss_weight (float): weight. Defaults to 1.
        temperature (float): softmax temperature of the teacher. Defaults to 1.
        with_contrast (bool): add the crops' contrast to the teacher. Defaults to False.
        skip_class (int, optional): images labelled this class do not teach (the
            "absent" class of a presence task: their instances hold no marker, and
            the reader's evidence ranks first what looks least like one, which is
            not where a marker would be). Defaults to None (every image teaches).
    """
    needs_evidence = True
    default_name = 'loss_distill'

    def __init__(self, loss_weight: float = 1.0, temperature: float = 1.0,
                 with_contrast: bool = False, skip_class: Optional[int] = None,
                 loss_name: str = None):
        super().__init__(loss_weight, loss_name)
        if not temperature > 0:
            raise ValueError(f'EvidenceDistillLoss.temperature must be > 0, '
                             f'got {temperature!r}')
        self.temperature = float(temperature)
        self.with_contrast = with_contrast
        if skip_class is not None and (isinstance(skip_class, bool) or
                                       not isinstance(skip_class, int) or skip_class < 0):
            raise ValueError(f'EvidenceDistillLoss.skip_class must be a class index '
                             f'(int >= 0) or None, got {skip_class!r}')
        self.skip_class = skip_class

    def teacher(self, state: GattnState) -> torch.Tensor:
        """Teacher scores (B, N), no gradient."""
        evidence = state.evidence.detach()  # (B, N)
        if not self.with_contrast:
            return evidence
        if self.prior_scale == 0:
            return zscore(evidence)
        B, N = evidence.shape
        contrast = gray_std(state.crops, (1, 1)).view(B, N)
        return zscore(evidence) + self.prior_scale * zscore(contrast)

    def teaching(self, state: GattnState) -> torch.Tensor:
        """(B,) whether each image teaches: not of ``skip_class`` (all without
        labels)."""
        B = state.scores.size(0)
        if self.skip_class is None or not state.data_samples:
            return torch.ones(B, dtype=torch.bool, device=state.scores.device)
        labels = [s.gt_label.view(-1) for s in state.data_samples]
        return torch.tensor([not (len(v) == 1 and int(v[0]) == self.skip_class)
                             for v in labels], device=state.scores.device)

    def loss(self, state: GattnState) -> torch.Tensor:
        keep = self.teaching(state)
        if not keep.any():  # no image teaches: zero, still on the graph
            return state.scores.sum() * 0.
        return kl_to_attention(self.teacher(state)[keep], state.scores[keep],
                               self.temperature)
