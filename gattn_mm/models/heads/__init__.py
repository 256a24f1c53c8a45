from .gattn_head import GattnHead
from .fusion_head import FusionHead
from .instance_head import InstanceHead
from .multi_label_fusion_head import MultiLabelFusionHead

__all__ = ['GattnHead', 'FusionHead', 'InstanceHead', 'MultiLabelFusionHead']
