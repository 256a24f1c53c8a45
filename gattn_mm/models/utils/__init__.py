from .gattn_state import GattnState, Selection
from .native_batch import CropSource, ImageSource, NativeBatch, SlideSource
from .ops import (area_resize, downsample, gray_std, image_extents, int_pair, pool_feature,
                  zscore)

__all__ = ['CropSource', 'ImageSource', 'NativeBatch', 'SlideSource', 'GattnState', 'Selection', 'area_resize', 'downsample', 'gray_std', 'image_extents',
           'int_pair', 'pool_feature', 'zscore']
