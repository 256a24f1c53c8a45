from .gated_attention_classifier import GatedAttentionClassifier

__all__ = ['GatedAttentionClassifier']
