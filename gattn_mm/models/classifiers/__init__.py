from .checkpoint_keys import CheckpointMismatchError
from .fixed_attention_classifier import FixedAttentionClassifier
from .gated_attention_classifier import GatedAttentionClassifier

__all__ = ['CheckpointMismatchError', 'FixedAttentionClassifier',
           'GatedAttentionClassifier']
