from typing import Tuple, Union

import torch
import torch.nn as nn
from torchvision.transforms.functional import gaussian_blur

from mmpretrain.registry import MODELS
from ..utils import ImageBatch, int_pair, is_positive_number, positive_number

ImageSize = Tuple[Union[float, torch.Tensor], Union[float, torch.Tensor]]


def _clamp(x1: torch.Tensor, y1: torch.Tensor, w: torch.Tensor, h: torch.Tensor,
           bounds: ImageSize) -> torch.Tensor:
    """Boxes (..., 4) xyxy of size (h, w) at (x1, y1), shifted inside ``bounds`` (H, W)
    (numbers or tensors broadcastable to ``x1``); a box larger than the bounds
    shrinks to them."""
    H, W = (torch.as_tensor(v, dtype=x1.dtype, device=x1.device) for v in bounds)
    w, h = torch.minimum(w, W), torch.minimum(h, H)
    x1 = torch.minimum(x1.clamp(min=0), W - w)
    y1 = torch.minimum(y1.clamp(min=0), H - h)
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=-1)


@MODELS.register_module()
class ContrastPeakRefiner(nn.Module):
    """Moves every box onto the strongest structure within its reach, found at full
    resolution: hand-made, no parameters, no gradient.

    A box the selector places on the attention grid is centred on its cell, not on
    what the cell holds: on a 1,500 px image glanced at 160 px the cells are ~37
    native px apart, as large as a cell of the specimen, so the structure sits
    anywhere in its box among parts of its neighbours. For each box this reads a
    window of ``window`` times the box around it at ``window_size`` px, takes the
    gray-level contrast ``|g - median(g)|`` blurred by a Gaussian of ``sigma`` box
    sides, and moves the box's centre to the contrast peak, at most ``reach`` box
    sides in x and in y; the box keeps its size and stays inside the image.

    Args:
        window (float): the window's side in box sides, >= 1. Defaults to 2.
        window_size (int | tuple): (h, w) the window is read at. Defaults to 64.
        sigma (float): the Gaussian's sigma in box sides. Defaults to 0.1.
        reach (float): the largest move of the centre in box sides, in each of x
            and y; at most ``window / 2``. Defaults to 0.5.
    """

    def __init__(self, window: float = 2., window_size: Union[int, Tuple[int, int]] = 64,
                 sigma: float = 0.1, reach: float = 0.5):
        super().__init__()
        if not (is_positive_number(window) and window >= 1):
            raise ValueError(f'refiner.window must be a number >= 1 (box sides), got '
                             f'{window!r}')
        reach_is_number = is_positive_number(reach) or reach == 0 and not isinstance(reach, bool)
        if not (reach_is_number and reach <= window / 2):
            raise ValueError(f'refiner.reach must be a number in [0, window / 2 = '
                             f'{window / 2}] (box sides), got {reach!r}')
        self.window = float(window)
        self.window_size = int_pair(window_size, 'refiner.window_size')
        self.sigma = positive_number(sigma, 'refiner.sigma')
        self.reach = float(reach)

    @torch.no_grad()
    def forward(self, images: ImageBatch, boxes: torch.Tensor,
                bounds: ImageSize) -> torch.Tensor:
        """Refine boxes.

        Args:
            images (ImageBatch): the batch the boxes are cut from.
            boxes (Tensor): (B, N, 4) xyxy in input pixels.
            bounds (tuple): (H, W) each box must stay in: two numbers, or two (B, 1)
                tensors (each image's extent).

        Returns:
            Tensor: (B, N, 4) the boxes, moved.
        """
        B, N = boxes.shape[:2]
        bw, bh = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]  # (B, N)
        cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
        windows = _clamp(cx - self.window * bw / 2, cy - self.window * bh / 2,
                         self.window * bw, self.window * bh, bounds)  # (B, N, 4)
        contrast = self.contrast(images.crop(windows, self.window_size))  # (B*N, h, w)
        h, w = self.window_size
        sx = ((windows[..., 2] - windows[..., 0]) / w).reshape(-1, 1)  # px per window px
        sy = ((windows[..., 3] - windows[..., 1]) / h).reshape(-1, 1)
        xs = windows[..., 0].reshape(-1, 1) + (torch.arange(w, device=boxes.device) + .5) * sx
        ys = windows[..., 1].reshape(-1, 1) + (torch.arange(h, device=boxes.device) + .5) * sy
        # beyond reach (by more than half a window pixel: the box's own pixel stays)
        out_x = (xs - cx.reshape(-1, 1)).abs() > self.reach * bw.reshape(-1, 1) + sx / 2
        out_y = (ys - cy.reshape(-1, 1)).abs() > self.reach * bh.reshape(-1, 1) + sy / 2
        contrast = contrast.masked_fill(out_y[:, :, None] | out_x[:, None, :], -1.)
        peak = contrast.flatten(1).argmax(dim=1)  # (B*N,)
        rows = torch.div(peak, w, rounding_mode='floor')
        new_x = xs.gather(1, (peak % w)[:, None]).view(B, N)
        new_y = ys.gather(1, rows[:, None]).view(B, N)
        return _clamp(new_x - bw / 2, new_y - bh / 2, bw, bh, bounds)

    def contrast(self, windows: torch.Tensor) -> torch.Tensor:
        """Blurred contrast (M, h, w) of windows (M, 3, h, w)."""
        gray = windows.float().mean(dim=1)  # (M, h, w)
        contrast = (gray - gray.flatten(1).median(dim=1).values[:, None, None]).abs()
        sigma = self.sigma * self.window_size[1] / self.window  # box sides -> window px
        kernel = 2 * int(3 * sigma) + 1
        return gaussian_blur(contrast[:, None], [kernel, kernel], [sigma, sigma])[:, 0]
