from .gattn_state import GattnState, Selection
from .ops import (area_resize, downsample, gray_std, image_extents, int_pair, pool_feature,
                  zscore)

__all__ = ['GattnState', 'Selection', 'area_resize', 'downsample', 'gray_std', 'image_extents',
           'int_pair', 'pool_feature', 'zscore']
