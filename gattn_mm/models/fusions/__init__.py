from .attention_fusion import AttentionFusion
from .concat_fusion import ConcatFusion
from .mean_fusion import MeanFusion

__all__ = ['AttentionFusion', 'ConcatFusion', 'MeanFusion']
