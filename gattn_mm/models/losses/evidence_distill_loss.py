import torch

from mmpretrain.registry import MODELS
from ..utils import GattnState, gray_std, positive_number, zscore
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
    ranks them later.

    Args:
        loss_weight (float): weight. Defaults to 1.
        temperature (float): softmax temperature of the teacher. Defaults to 1.
        with_contrast (bool): add the crops' contrast to the teacher. Defaults to False.
    """
    needs_evidence = True
    default_name = 'loss_distill'

    def __init__(self, loss_weight: float = 1.0, temperature: float = 1.0,
                 with_contrast: bool = False, loss_name: str = None):
        super().__init__(loss_weight, loss_name)
        self.temperature = positive_number(temperature, 'EvidenceDistillLoss.temperature')
        self.with_contrast = with_contrast

    def teacher(self, state: GattnState) -> torch.Tensor:
        """Teacher scores (B, N), no gradient."""
        evidence = state.evidence.detach()  # (B, N)
        if not self.with_contrast:
            return evidence
        B, N = evidence.shape
        contrast = gray_std(state.crops, (1, 1)).view(B, N)
        return zscore(evidence) + zscore(contrast)

    def loss(self, state: GattnState) -> torch.Tensor:
        return kl_to_attention(self.teacher(state), state.scores, self.temperature)
