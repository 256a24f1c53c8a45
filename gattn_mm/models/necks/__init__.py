from .gated_attention_neck import GatedAttentionNeck

__all__ = ['GatedAttentionNeck']
