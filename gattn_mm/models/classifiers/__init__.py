from .checkpoint_keys import CheckpointMismatchError
from .gated_attention_classifier import GatedAttentionClassifier

__all__ = ['CheckpointMismatchError', 'GatedAttentionClassifier']
