import os.path as osp
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmpretrain.registry import TRANSFORMS
from .image_reading import (DEFAULT_MAX_PIXELS, IMG_EXTENSIONS, ImageReadError,  # noqa: F401
                            read_image, to_rgb_uint8)


@TRANSFORMS.register_module()
class LoadMicroscopyImage(BaseTransform):
    """Load ``results['img_path']`` at full resolution as (H, W, 3) uint8.

    Adds ``img``, ``img_shape`` and ``ori_shape`` (h, w). The channel order is BGR
    by default, the OpenMMLab convention (``ClsDataPreprocessor(to_rgb=True)`` turns
    it to RGB), so mmpretrain's own inferencer, which hands over BGR arrays, gives
    the same input. When ``results`` already holds an ``img`` and no ``img_path``
    (an inferencer), the array is only normalised to 3-channel uint8.

    An unreadable file raises ``ImageReadError`` naming it (use the dataset's
    ``skip_invalid=True`` to skip such files with a count in the log).

    With ``lazy_slides`` (the native path, ``NativeDataPreprocessor``), a slide (an
    OpenSlide format, or a TIFF with a pyramid or over ``max_pixels``) is not decoded:
    ``slide`` holds a :class:`~gattn_mm.datasets.slides.Slide` the model reads region
    by region, ``img`` a thumbnail of at most ``thumbnail_size`` pixels a side (for
    overlays), ``ori_shape`` the level-0 (h, w). A slide without a usable pyramid, a
    truncated slide or a format without its reader is refused, naming the file.

    Args:
        to_float32 (bool): return float32 instead of uint8. Defaults to False.
        channel_order (str): ``bgr`` (default) or ``rgb``.
        max_pixels (int): pixel budget of one image (see :func:`read_image`), and of
            each read of a slide (a level read whole, or a region).
        lazy_slides (bool): read slides lazily (see above). Defaults to False.
        thumbnail_size (int): longest side of a slide's thumbnail.
    """

    def __init__(self, to_float32: bool = False, channel_order: str = 'bgr',
                 max_pixels: int = DEFAULT_MAX_PIXELS, lazy_slides: bool = False,
                 thumbnail_size: int = 1024):
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        if int(max_pixels) != max_pixels or max_pixels < 1:
            raise ValueError(f'max_pixels must be a positive int, got {max_pixels!r}')
        if int(thumbnail_size) != thumbnail_size or thumbnail_size < 1:
            raise ValueError(f'thumbnail_size must be a positive int, got {thumbnail_size!r}')
        self.to_float32 = to_float32
        self.channel_order = channel_order
        self.max_pixels = int(max_pixels)
        self.lazy_slides = lazy_slides
        self.thumbnail_size = int(thumbnail_size)

    def is_slide(self, path: str) -> bool:
        """An OpenSlide format, or a TIFF with a pyramid or over ``max_pixels``."""
        from ..slides.base import OPENSLIDE_EXTENSIONS, TIFF_EXTENSIONS
        lower = path.lower()
        if lower.endswith(OPENSLIDE_EXTENSIONS):
            return True
        if not lower.endswith(TIFF_EXTENSIONS) or not osp.isfile(path):
            return False
        import tifffile
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes, shape = series.axes, series.shape
                pixels = shape[axes.index('Y')] * shape[axes.index('X')] \
                    if 'Y' in axes and 'X' in axes else 0
                return len(series.levels) > 1 or pixels > self.max_pixels
        except Exception:  # noqa: BLE001  (read_image names what is wrong)
            return False

    def load_slide(self, results: dict) -> dict:
        from ..slides import open_slide
        path = results['img_path']
        slide = open_slide(path, self.max_pixels)
        H, W = slide.shape
        r = min(1.0, self.thumbnail_size / max(H, W))
        size = (max(1, round(H * r)), max(1, round(W * r)))
        level = slide.level_covering(size)
        h, w = slide.level_shapes[level]
        thumb = cv2.resize(slide.read(level, 0, 0, h, w), size[::-1],
                           interpolation=cv2.INTER_AREA)
        if self.channel_order == 'bgr':
            thumb = np.ascontiguousarray(thumb[..., ::-1])
        results['img'] = thumb.astype(np.float32) if self.to_float32 else thumb
        results['img_shape'] = thumb.shape[:2]
        results['ori_shape'] = (H, W)
        results['slide'] = slide
        return results

    def transform(self, results: dict) -> Optional[dict]:
        if self.lazy_slides and results.get('img_path') is not None and \
                self.is_slide(results['img_path']):
            return self.load_slide(results)
        if results.get('img_path') is None and results.get('img') is not None:
            img = to_rgb_uint8(np.asarray(results['img']))  # already in the caller's order
        else:
            img = read_image(results['img_path'], self.max_pixels)
            if self.channel_order == 'bgr':  # as img[..., ::-1], >10x faster than numpy's copy
                img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
