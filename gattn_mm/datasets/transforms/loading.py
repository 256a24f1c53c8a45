import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmpretrain.registry import TRANSFORMS

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')  # what read_image reads


class ImageReadError(IOError):
    """An image file is missing, truncated or not an image."""


def read_image(path: str) -> np.ndarray:
    """Read a microscopy image as (H, W, 3) uint8 RGB at full resolution.

    8- and 16-bit PNG/JPEG/TIFF (TIFF through tifffile); gray becomes 3 channels,
    RGBA drops alpha; 16-bit (and float) images are scaled to 8 bits by their
    dtype range (16-bit: / 257).

    Raises:
        ImageReadError: naming ``path`` when it cannot be read completely.
    """
    if not osp.isfile(path):
        raise ImageReadError(f'image file not found: {path}')
    try:
        if path.lower().endswith(('.tif', '.tiff')):
            import tifffile
            img = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image
            with Image.open(path) as im:
                im.load()  # raises on truncated data
                if im.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
                    img = np.asarray(im).astype(np.uint16 if im.mode != 'I' else np.int32)
                elif im.mode in ('L', 'RGB', 'RGBA'):
                    img = np.asarray(im)
                else:
                    img = np.asarray(im.convert('RGB'))
    except Exception as err:  # noqa: BLE001  (PIL/tifffile raise many types)
        raise ImageReadError(f'cannot read image {path}: {type(err).__name__}: {err}') from err
    return to_rgb_uint8(img, path)


def to_rgb_uint8(img: np.ndarray, path: str = '<array>') -> np.ndarray:
    """(H, W), (H, W, 1|3|4) of any integer/float dtype -> (H, W, 3) uint8."""
    if img.ndim == 3 and img.shape[0] in (1, 3, 4) and img.shape[-1] not in (1, 3, 4):
        img = img.transpose(1, 2, 0)  # channel-first TIFF
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3, 4):
        raise ImageReadError(f'{path}: expected a gray, RGB or RGBA image, got shape '
                             f'{img.shape}')
    img = img[..., :3] if img.shape[-1] == 4 else img
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.uint16:
        return (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    info = np.iinfo(img.dtype)
    scale = 255.0 / max(int(img.max()), 1) if img.max() > 255 else 1.0
    return (np.clip(img, 0, info.max) * scale).round().astype(np.uint8)


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

    Args:
        to_float32 (bool): return float32 instead of uint8. Defaults to False.
        channel_order (str): ``bgr`` (default) or ``rgb``.
    """

    def __init__(self, to_float32: bool = False, channel_order: str = 'bgr'):
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        self.to_float32 = to_float32
        self.channel_order = channel_order

    def transform(self, results: dict) -> Optional[dict]:
        if results.get('img_path') is None and results.get('img') is not None:
            img = to_rgb_uint8(np.asarray(results['img']))  # already in the caller's order
        else:
            img = read_image(results['img_path'])
            if self.channel_order == 'bgr':
                img = np.ascontiguousarray(img[..., ::-1])
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
