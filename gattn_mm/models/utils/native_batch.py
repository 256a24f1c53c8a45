"""Images at their own size, read on demand: the input of the native-resolution path.

A :class:`NativeBatch` holds one :class:`CropSource` per image: the decoded image
(:class:`ImageSource`, any size, no canvas) or a whole-slide image read lazily from its
pyramid (:class:`SlideSource`). The model asks it for three things, each read at the
coarsest resolution that serves it: the glance (the image fitted into (h0, w0),
padded at the bottom and right), the contrast of each attention cell, and the crops of
the boxes (B, N, 4) in native (level-0) pixels. Nothing reads a whole large image.
It also says what the sampler needs for boxes in µm and on tissue only: each image's
pixel size (µm per native pixel, a slide's metadata) and the share of tissue in each
attention cell (Otsu's threshold on a low-resolution view).

Geometry: image i of native (H, W) is fitted into the glance by r = min(h0 / H, w0 / W);
the glance covers a *virtual canvas* of (h0 / r, w0 / r) native pixels whose top-left
part is the image, so cells and boxes are in native pixels and cells beyond (H, W) are
padding (the sampler never chooses them).
"""
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from ...datasets.transforms.image_reading import ImageReadError
from ...utils.pyramid import level_covering, level_within
from ...utils.tissue import tissue_mask
from .batch import ImageBatch
from .ops import downsample, gray_std
from .prediction_fields import set_original_boxes


class CropSource:
    """Pixels of one image, normalised, region by region at a pyramid level.

    Args:
        mean (Sequence[float]): per-channel mean of the model's normalisation (RGB).
        std (Sequence[float]): per-channel std.
        device (torch.device): where regions are returned.
        name (str, optional): the image's file, for errors.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], device=None,
                 name: Optional[str] = None):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(3, 1, 1)
        self.device = device
        self.name = name or 'an image given as an array'

    @property
    def level_shapes(self) -> List[Tuple[int, int]]:
        """(h, w) of every level, level 0 (the native size) first."""
        raise NotImplementedError

    @property
    def shape(self) -> Tuple[int, int]:
        return self.level_shapes[0]

    def level_for(self, downsample: float) -> int:
        """The coarsest level whose downsample is at most ``downsample``."""
        return level_within(self.level_shapes, downsample)

    def level_covering(self, size: Tuple[int, int]) -> int:
        """The coarsest level of at least ``size`` (h, w)."""
        return level_covering(self.level_shapes, size)

    def read_raw(self, level: int, top: int, left: int, height: int,
                 width: int) -> torch.Tensor:
        """(3, h, w) float RGB in 0-255 of a region of ``level``, clipped to it."""
        raise NotImplementedError

    def pixel_size(self) -> Tuple[float, float]:
        """(y, x) µm per native pixel. Only a slide's metadata give one here.

        Raises:
            ImageReadError: naming the image, when it has none.
        """
        raise ImageReadError(f'{self.name}: no pixel size (µm per pixel): sizes in µm are '
                             f'read from a slide\'s metadata (a file read lazily as a slide by '
                             f'LoadMicroscopyImage(lazy_slides=True)); give the size in '
                             f'pixels (sampler.box_size) for other images')

    def tissue(self, size: Tuple[int, int], background: str = 'bright') -> torch.Tensor:
        """(h, w) float, 1 on tissue (:func:`~gattn_mm.utils.tissue.tissue_mask`, on
        a ``background`` 'bright' or 'dark') of the whole image at ``size`` (at most
        native), read as :meth:`view` reads it."""
        level = self.level_covering(size)
        h, w = self.level_shapes[level]
        rgb = self.read_raw(level, 0, 0, h, w)[None]
        rgb = downsample(rgb, size)[0] if h >= size[0] and w >= size[1] else rgb[0]
        rgb = rgb.round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
        return torch.from_numpy(tissue_mask(rgb, background).astype(np.float32)).to(
            self.mean.device)

    def read(self, level: int, top: int, left: int, height: int,
             width: int) -> torch.Tensor:
        """(3, h, w) the normalised region of ``level``, clipped to it."""
        return (self.read_raw(level, top, left, height, width) - self.mean) / self.std

    def view(self, size: Tuple[int, int]) -> torch.Tensor:
        """The whole image at (h, w), read from the coarsest level that covers it and
        downsampled by the mean over windows: (3, h, w)."""
        level = self.level_covering(size)
        h, w = self.level_shapes[level]
        image = self.read(level, 0, 0, h, w)[None]
        if h < size[0] or w < size[1]:  # an image smaller than the view: enlarge
            return F.interpolate(image, size=size, mode='bilinear', align_corners=False)[0]
        return downsample(image, size)[0]

    def crop(self, boxes: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """Crops (M, 3, *size) of boxes (M, 4) xyxy in native pixels, each read at the
        coarsest level with at least the crop's resolution (``roi_align`` with
        adaptive sampling, as the canvas path: every pixel of the box is averaged).
        Each box's region is read alone; the regions are packed into one buffer (edge
        pixels repeated, which is ``roi_align``'s own rule at a border) for one
        ``roi_align`` call; one host sync for all the boxes."""
        if not len(boxes):
            return self.mean.new_zeros((0, 3) + tuple(size))
        regions, rois = [], []
        for i, box in enumerate(boxes.detach().cpu().tolist()):
            region, roi = self.region_of(box, size)
            regions.append(region)
            rois.append([i, *roi])
        h = max(r.size(1) for r in regions)
        w = max(r.size(2) for r in regions)
        packed = torch.stack([F.pad(r[None], (0, w - r.size(2), 0, h - r.size(1)),
                                    mode='replicate')[0] for r in regions])
        return roi_align(packed, packed.new_tensor(rois), output_size=size,
                         spatial_scale=1.0, sampling_ratio=0, aligned=True)

    def region_of(self, box: List[float], size: Tuple[int, int]):
        """The normalised region (3, h, w) around a box (xyxy, native pixels) at the
        level of its crop, and the box (x1, y1, x2, y2) in the region's pixels."""
        scale = min((box[3] - box[1]) / size[0], (box[2] - box[0]) / size[1])
        level = self.level_for(max(scale, 1.0))
        (H, W), (h, w) = self.shape, self.level_shapes[level]
        sy, sx = h / H, w / W
        x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        top, left = max(0, math.floor(y1) - 1), max(0, math.floor(x1) - 1)
        region = self.read(level, top, left, math.ceil(y2) + 2 - top,
                           math.ceil(x2) + 2 - left)
        return region, (x1 - left, y1 - top, x2 - left, y2 - top)


class ImageSource(CropSource):
    """A decoded image at its own size: (3, H, W) uint8 (or float 0-255) on the device,
    one level.

    Args:
        image (Tensor): (3, H, W), channel order as loaded.
        to_rgb (bool): the image is BGR and is flipped to RGB.
    """

    def __init__(self, image: torch.Tensor, mean, std, to_rgb: bool = False,
                 name: Optional[str] = None):
        super().__init__(mean, std, image.device, name)
        if image.dim() != 3 or image.size(0) != 3:
            raise ValueError(f'an image of the native path is (3, H, W), got '
                             f'{tuple(image.shape)}')
        self.image = image.flip(0) if to_rgb else image

    @property
    def level_shapes(self) -> List[Tuple[int, int]]:
        return [tuple(self.image.shape[-2:])]

    def read_raw(self, level, top, left, height, width) -> torch.Tensor:
        return self.image[:, max(0, top):top + height, max(0, left):left + width].float()


class SlideSource(CropSource):
    """A whole-slide image (``gattn_mm.datasets.slides.Slide``) read lazily: every read
    decodes only the tiles of one region of one level.

    Args:
        slide (Slide): the slide.
    """

    def __init__(self, slide, mean, std, device=None):
        super().__init__(mean, std, device, slide.path)
        self.slide = slide

    def pixel_size(self) -> Tuple[float, float]:
        """The slide's (y, x) µm per level-0 pixel; ``SlideError`` naming the file
        when its metadata have none."""
        return self.slide.pixel_size()

    @property
    def level_shapes(self) -> List[Tuple[int, int]]:
        return self.slide.level_shapes

    def level_covering(self, size: Tuple[int, int]) -> int:
        """As the slide chooses: only levels within its pixel budget (``view`` reads the
        level whole)."""
        return self.slide.level_covering(size)

    def read_raw(self, level, top, left, height, width) -> torch.Tensor:
        region = self.slide.read(level, top, left, height, width)  # (h, w, 3) RGB
        return torch.from_numpy(np.ascontiguousarray(region.transpose(2, 0, 1))).to(
            self.device, torch.float32)


def canvas_padding(view: Tuple[int, int], native: Tuple[int, int],
                   size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """``F.pad`` widths (left, right, top, bottom) that extend a (h, w) ``view`` of an
    image of ``native`` (H, W) pixels to the image's virtual canvas of the (h0, w0)
    ``size`` (the image fitted into it, as :meth:`NativeBatch.canvas` has it), at the
    view's own scale; in Python numbers: no host sync."""
    fit = min(size[0] / native[0], size[1] / native[1])
    r = view[0] / native[0]
    ph = max(view[0], round(size[0] / fit * r))
    pw = max(view[1], round(size[1] / fit * r))
    return 0, pw - view[1], 0, ph - view[0]


class NativeBatch(ImageBatch):
    """A batch of images at their own sizes (see the module's docstring), an
    :class:`~gattn_mm.models.utils.batch.ImageBatch`: its extents are the images'
    native sizes, its canvas each image's virtual canvas.

    Args:
        sources (list[CropSource]): one per image.
    """

    def __init__(self, sources: Sequence[CropSource]):
        if not sources:
            raise ValueError('a NativeBatch needs at least one image')
        self.sources = list(sources)
        # gray_std by (grid, samples): the sampler's exploration and the contrast
        # prior loss read the same full-resolution contrast once per batch
        self._contrast = {}

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def device(self):
        return self.sources[0].mean.device

    @property
    def extents(self) -> torch.Tensor:
        """(B, 2): every image covers its own native size (:meth:`shapes`)."""
        return self.shapes()

    def set_original_boxes(self, samples, boxes: torch.Tensor,
                           global_size: Tuple[int, int]) -> None:
        """The boxes are in native (level-0) pixels already; each sample also gets the
        share of the attention map its image covers (``attention_extent``)."""
        set_original_boxes(samples, boxes, self.fits(global_size), global_size)

    def shapes(self) -> torch.Tensor:
        """(B, 2) float: the native (H, W) of every image."""
        return torch.tensor([s.shape for s in self.sources], dtype=torch.float32,
                            device=self.device)

    def fits(self, size: Tuple[int, int]) -> List[Tuple[int, int]]:
        """The (h, w) each image takes in a (h0, w0) view, aspect ratio kept."""
        out = []
        for H, W in (s.shape for s in self.sources):
            r = min(size[0] / H, size[1] / W)
            out.append((max(1, min(size[0], round(H * r))), max(1, min(size[1], round(W * r)))))
        return out

    def canvas(self, size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The virtual canvas (h, w) of a (h0, w0) view, in native pixels: two
        (B, 1) tensors."""
        shapes = self.shapes()
        r = torch.minimum(size[0] / shapes[:, 0], size[1] / shapes[:, 1])[:, None]
        return size[0] / r, size[1] / r

    def glance(self, size: Tuple[int, int]) -> torch.Tensor:
        """(B, 3, h0, w0): each image fitted into (h0, w0) and zero-padded."""
        return self._stack(size, [src.view(fit) for src, fit in
                                  zip(self.sources, self.fits(size))])

    def gray_std(self, grid: Tuple[int, int], samples: int = 32) -> torch.Tensor:
        """Contrast (B, h*w): the standard deviation of the gray pixels in each cell of
        the virtual canvas, read at about ``samples`` pixels per cell side (at most
        the native resolution); padding cells have none. Computed once per batch."""
        key = (tuple(grid), samples)
        if key not in self._contrast:
            self._contrast[key] = self._gray_std(tuple(grid), samples)
        return self._contrast[key]

    def _gray_std(self, grid: Tuple[int, int], samples: int) -> torch.Tensor:
        size = (grid[0] * samples, grid[1] * samples)
        stds = []
        for src, (h, w) in zip(self.sources, self.fits(size)):
            H, W = src.shape
            view = src.view((min(h, H), min(w, W)))  # never above native
            # padded to the virtual canvas at the view's own scale; the cells'
            # contrast from the image's pixels alone
            pad = canvas_padding(tuple(view.shape[-2:]), src.shape, size)
            valid = F.pad(view.new_ones((1, 1) + tuple(view.shape[-2:])), pad)
            stds.append(gray_std(F.pad(view, pad)[None], grid, samples, valid))
        return torch.cat(stds)

    def pixel_sizes(self) -> torch.Tensor:
        """(B, 2) float: every image's (y, x) µm per native pixel (see
        :meth:`CropSource.pixel_size`; an image without one is refused by name)."""
        return torch.tensor([s.pixel_size() for s in self.sources], dtype=torch.float32,
                            device=self.device)

    def tissue(self, grid: Tuple[int, int], samples: int = 8,
               background: str = 'bright') -> torch.Tensor:
        """(B, h, w) the share of tissue pixels (on a ``background`` 'bright' or
        'dark') in each cell of the virtual canvas, from a view of about ``samples``
        pixels per cell side (at most native); padding cells have none."""
        size = (grid[0] * samples, grid[1] * samples)
        shares = []
        for src, (h, w) in zip(self.sources, self.fits(size)):
            H, W = src.shape
            mask = src.tissue((min(h, H), min(w, W)), background)
            padded = F.pad(mask, canvas_padding(tuple(mask.shape), src.shape, size))
            shares.append(F.adaptive_avg_pool2d(padded[None, None], grid)[0, 0])
        return torch.stack(shares)

    def crop(self, boxes: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """Crops (B*M, 3, *size) of boxes (B, M, 4) in native pixels."""
        return torch.cat([src.crop(b, size) for src, b in zip(self.sources, boxes)])

    @staticmethod
    def _stack(size: Tuple[int, int], views: List[torch.Tensor]) -> torch.Tensor:
        return torch.stack([F.pad(v, (0, size[1] - v.size(-1), 0, size[0] - v.size(-2)))
                            for v in views])
