from .fusion_head import FusionHead
from .instance_head import InstanceHead

__all__ = ['FusionHead', 'InstanceHead']
