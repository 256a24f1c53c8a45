from .attention_entropy_loss import AttentionEntropyLoss
from .base_attention_loss import BaseAttentionLoss
from .contrast_prior_loss import ContrastPriorLoss
from .evidence_distill_loss import EvidenceDistillLoss
from .mil_loss import MILLoss

__all__ = ['AttentionEntropyLoss', 'BaseAttentionLoss', 'ContrastPriorLoss',
           'EvidenceDistillLoss', 'MILLoss']
