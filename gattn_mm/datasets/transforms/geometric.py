from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmpretrain.registry import TRANSFORMS


def _boxes(results: dict) -> Optional[np.ndarray]:
    boxes = results.get('gt_bboxes')
    return None if boxes is None else np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


@TRANSFORMS.register_module()
class ResizeToCanvas(BaseTransform):
    """Resize a high-resolution image to fit a (h, w) canvas, keeping its aspect
    ratio, and pad the rest (right and bottom) with ``pad_val``.

    Records ``scale_factor`` (w_scale, h_scale) so predictions can be mapped back
    to original pixels, and scales ``gt_bboxes`` (xyxy) when present. Downscaling
    uses area interpolation (no aliasing of fine structures).

    Args:
        scale (int | tuple): canvas (h, w).
        pad_val (int): padding value. Defaults to 0.
        allow_upscale (bool): also enlarge images smaller than the canvas.
            Defaults to True.
    """

    def __init__(self, scale: Union[int, Tuple[int, int]], pad_val: int = 0,
                 allow_upscale: bool = True):
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        self.pad_val = pad_val
        self.allow_upscale = allow_upscale

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        H, W = self.scale
        ratio = min(H / h, W / w)
        if not self.allow_upscale:
            ratio = min(ratio, 1.0)
        nh, nw = max(1, int(round(h * ratio))), max(1, int(round(w * ratio)))
        if (nh, nw) != (h, w):
            interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
            img = cv2.resize(img, (nw, nh), interpolation=interp)
            if img.ndim == 2:
                img = img[..., None]
        canvas = np.full((H, W) + img.shape[2:], self.pad_val, dtype=img.dtype)
        canvas[:nh, :nw] = img
        results['img'] = canvas
        results['img_shape'] = (H, W)
        sx, sy = nw / w, nh / h
        results['scale_factor'] = (sx, sy)
        boxes = _boxes(results)
        if boxes is not None:
            results['gt_bboxes'] = boxes * np.array([sx, sy, sx, sy], dtype=np.float32)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(scale={self.scale}, pad_val={self.pad_val})'


@TRANSFORMS.register_module()
class RandomFlipRotate90(BaseTransform):
    """Random element of the dihedral group: horizontal flip and k x 90° rotation.

    Microscopy has no "up", so all 8 orientations are equally valid. ``gt_bboxes``
    (xyxy) follow the image.

    Args:
        flip_prob (float): probability of a horizontal flip. Defaults to 0.5.
        rotate_prob (float): probability of a rotation by 90, 180 or 270 degrees
            (chosen uniformly). Defaults to 0.75 (so all 4 rotations are equally
            likely).
    """

    def __init__(self, flip_prob: float = 0.5, rotate_prob: float = 0.75):
        self.flip_prob = flip_prob
        self.rotate_prob = rotate_prob

    @staticmethod
    def flip(results: dict) -> None:
        img = results['img']
        w = img.shape[1]
        results['img'] = np.ascontiguousarray(img[:, ::-1])
        boxes = _boxes(results)
        if boxes is not None:
            results['gt_bboxes'] = np.stack(
                [w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], axis=1)

    @staticmethod
    def rot90(results: dict, k: int) -> None:
        """Rotate counter-clockwise by k x 90 degrees (as ``np.rot90``)."""
        for _ in range(k % 4):
            img = results['img']
            w = img.shape[1]
            results['img'] = np.ascontiguousarray(np.rot90(img))
            boxes = _boxes(results)
            if boxes is not None:  # (x, y) -> (y, w - x)
                results['gt_bboxes'] = np.stack(
                    [boxes[:, 1], w - boxes[:, 2], boxes[:, 3], w - boxes[:, 0]], axis=1)
        results['img_shape'] = results['img'].shape[:2]

    def transform(self, results: dict) -> dict:
        flipped = np.random.rand() < self.flip_prob
        k = int(np.random.randint(1, 4)) if np.random.rand() < self.rotate_prob else 0
        if flipped:
            self.flip(results)
        self.rot90(results, k)
        results['flip'] = flipped
        results['rot90'] = k
        return results


@TRANSFORMS.register_module()
class StainJitter(BaseTransform):
    """Colour / stain jitter: per-channel gain and offset, and a global brightness.

    Args:
        gain (float): channel gains are drawn from [1 - gain, 1 + gain].
        offset (float): channel offsets from [-offset, offset] (in 0-255 units).
        prob (float): probability of applying. Defaults to 0.8.
    """

    def __init__(self, gain: float = 0.1, offset: float = 10., prob: float = 0.8):
        self.gain = gain
        self.offset = offset
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].astype(np.float32)
        c = img.shape[-1]
        gains = 1 + np.random.uniform(-self.gain, self.gain, c)
        offsets = np.random.uniform(-self.offset, self.offset, c)
        results['img'] = np.clip(img * gains + offsets, 0, 255).astype(np.uint8)
        return results
