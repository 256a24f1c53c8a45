from .base_fusion import BaseFusion
from .attention_fusion import AttentionFusion
from .concat_fusion import ConcatFusion
from .gated_instance_fusion import GatedInstanceFusion
from .mean_fusion import MeanFusion

__all__ = ['BaseFusion', 'AttentionFusion', 'ConcatFusion', 'GatedInstanceFusion', 'MeanFusion']
