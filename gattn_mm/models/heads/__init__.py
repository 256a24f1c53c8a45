from .fusion_head import FusionHead

__all__ = ['FusionHead']
