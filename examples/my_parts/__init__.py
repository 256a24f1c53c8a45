"""A downstream plugin of gattn-mm: six parts, one file each, registered in
mmpretrain's MODELS registry on import (see README, "Extending", and
docs/extending.md, "Extending gattn-mm")."""
from .border_free_selector import BorderFreeTopKSelector
from .centre_prior_loss import CentrePriorLoss
from .gem_fusion import GeMFusion
from .positive_focus_loss import PositiveFocusLoss
from .tiny_net import TinyNet
from .top_instance_head import TopInstanceHead

__all__ = ['BorderFreeTopKSelector', 'CentrePriorLoss', 'GeMFusion', 'PositiveFocusLoss',
           'TinyNet', 'TopInstanceHead']
