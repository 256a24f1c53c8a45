"""Small tensor operations shared by the parts."""
import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F


def int_pair(value: Union[int, Sequence[int]], key: str) -> Tuple[int, int]:
    """``value`` (a size ``s`` or ``(h, w)``) as an (h, w) pair of ints >= 1; the error
    names the config ``key``."""
    number = numbers.Real  # also numpy's scalars
    pair = (value, value) if isinstance(value, number) else \
        tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, number) or v < 1
                             for v in pair):
        raise ValueError(f'{key} must be a positive int or (h, w), got {value!r}')
    return int(pair[0]), int(pair[1])


def is_positive_number(value) -> bool:
    """Whether ``value`` is a finite real number > 0 (a bool is not a number here)."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value) and value > 0)


def positive_number(value, key: str) -> float:
    """``value`` as a float, when a finite number > 0; the error names the config
    ``key``."""
    if not is_positive_number(value):
        raise ValueError(f'{key}={value!r} must be a positive finite number')
    return float(value)


def pool_feature(outs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """Last backbone output as a vector (B, C): maps (B, C, h, w) are averaged over
    space, vectors (B, C) kept.

    Raises:
        ValueError: for another shape, e.g. a token sequence (B, L, C), which has no
            channel axis to pool over.
    """
    feat = outs[-1] if isinstance(outs, (tuple, list)) else outs
    if isinstance(feat, (tuple, list)):  # e.g. ViT's (patch_token, cls_token)
        feat = feat[-1]
    if feat.dim() == 4:
        return feat.mean(dim=(2, 3))
    if feat.dim() == 2:
        return feat
    raise ValueError(f'the reader gives an output of shape {tuple(feat.shape)}; a crop '
                     f'is read as a feature map (B, C, h, w) or a vector (B, C), not a '
                     f'token sequence: e.g. VisionTransformer(out_type=\'cls_token\' or '
                     f'\'avg_featmap\')')


def area_resize(inputs: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Mean over the windows of a (h, w) grid: (B, 3, H, W) -> (B, 3, h, w).

    The result of ``F.adaptive_avg_pool2d``. When H and W are multiples of h and w it
    is computed as two reshape-means, a single pass over memory: on a CPU that is
    about 3x faster than adaptive pooling for a 4096 px input, where this resize is
    the largest cost of a gattn step (tools/benchmarks/resolution.py).
    """
    H, W = inputs.shape[-2:]
    h, w = size
    if H % h or W % w:
        return F.adaptive_avg_pool2d(inputs, size)
    rows = inputs.unflatten(-2, (h, H // h)).mean(dim=-2)  # (B, 3, h, W)
    return rows.unflatten(-1, (w, W // w)).mean(dim=-1)  # (B, 3, h, w)


def image_extents(data_samples, size: Tuple[int, int],
                  device: Optional[torch.device] = None) -> Optional[torch.Tensor]:
    """(B, 2) float: the (h, w) in input pixels that each image covers, from its
    ``ori_shape`` and the ``scale_factor`` (w, h) of a resize that padded it to the
    input size (``ResizeToCanvas``); None when no image is padded or the metainfo
    lacks either key."""
    if not data_samples:
        return None
    extents = []
    for sample in data_samples:
        ori, scale = sample.get('ori_shape'), sample.get('scale_factor')
        if ori is None or scale is None:
            return None
        extents.append((min(size[0], ori[0] * float(scale[1])),
                        min(size[1], ori[1] * float(scale[0]))))
    if all(h >= size[0] - 0.5 and w >= size[1] - 0.5 for h, w in extents):
        return None
    return torch.tensor(extents, dtype=torch.float32, device=device)


def downsample(inputs: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """The glance: (B, 3, H, W) -> (B, 3, h0, w0), the mean over windows
    (:func:`area_resize`); refuses to enlarge."""
    if tuple(inputs.shape[-2:]) == tuple(size):
        return inputs
    if any(g > s for g, s in zip(size, inputs.shape[-2:])):
        raise ValueError(f'model.global_size={tuple(size)} is larger than the input '
                         f'{tuple(inputs.shape[-2:])}: the glance is a downsampled view')
    return area_resize(inputs, size)


def zscore(x: torch.Tensor) -> torch.Tensor:
    """(B, M) standardised along dim 1 (the cells or instances of each image); zeros
    when M is 1 (nothing to compare)."""
    if x.size(1) < 2:
        return torch.zeros_like(x)
    return (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-6)


def gray_std(images: torch.Tensor, grid: Tuple[int, int], samples: int = 32,
             valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Contrast: the standard deviation of the gray pixels in each cell, (B, h*w).

    The one contrast measure of gattn-mm (the contrast prior over the cells of the
    input, the contrast of the crops). Large cells are read on a regular subsample,
    every s-th pixel with s = cell side // ``samples`` (so 1 to 2 x ``samples``
    pixels per cell side): a standard deviation from a thousand pixels is as good a
    contrast cue, at a cost that stays flat as the input grows. No gradient.

    Args:
        images (Tensor): (B, 3, H, W).
        grid (tuple): (h, w) cells.
        valid (Tensor, optional): (B, 1, H, W) 1 on the image's pixels, 0 on padding:
            a cell's contrast is then that of its image pixels alone (a cell across
            the image's edge would otherwise measure the step from the image to the
            padding), 0 in a cell of padding only.
    """
    step = max(1, min(images.size(-2) // grid[0], images.size(-1) // grid[1]) // samples)
    gray = images.detach()[..., ::step, ::step].mean(dim=1, keepdim=True)
    if valid is None:
        mean = F.adaptive_avg_pool2d(gray, grid)
        sq = F.adaptive_avg_pool2d(gray * gray, grid)
    else:
        valid = valid[..., ::step, ::step].to(gray.dtype)
        share = F.adaptive_avg_pool2d(valid, grid).clamp_min(1e-6)
        mean = F.adaptive_avg_pool2d(gray * valid, grid) / share
        sq = F.adaptive_avg_pool2d(gray * gray * valid, grid) / share
    return (sq - mean * mean).clamp_min(0).sqrt().flatten(1)
