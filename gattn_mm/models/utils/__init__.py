from .batch import CanvasBatch, ImageBatch, as_batch
from .gated_attention import GatedAttention
from .gattn_state import GattnState, Selection
from .native_batch import CropSource, ImageSource, NativeBatch, SlideSource
from .prediction_fields import set_instance_fields, set_original_boxes
from .ops import (area_resize, downsample, gray_std, image_extents, int_pair,
                  is_positive_number, pool_feature, positive_number, zscore)

__all__ = ['as_batch', 'CanvasBatch', 'ImageBatch', 'GatedAttention', 'CropSource', 'ImageSource', 'NativeBatch', 'SlideSource', 'GattnState', 'Selection', 'area_resize', 'downsample', 'gray_std', 'image_extents',
           'int_pair', 'is_positive_number', 'pool_feature', 'positive_number', 'set_instance_fields',
           'set_original_boxes', 'zscore']
