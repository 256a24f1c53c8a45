"""A downstream plugin of gattn-mm: four parts, one file each, registered in
mmpretrain's MODELS registry on import (see README, "Extending gattn-mm")."""
from .border_free_selector import BorderFreeTopKSelector
from .centre_prior_loss import CentrePriorLoss
from .gem_fusion import GeMFusion
from .tiny_net import TinyNet

__all__ = ['BorderFreeTopKSelector', 'CentrePriorLoss', 'GeMFusion', 'TinyNet']
