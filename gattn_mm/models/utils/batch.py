"""The one input protocol of a gattn model: a batch that knows its glance, its extents,
the contrast of its cells and the crops of its boxes.

Two kinds of batch implement it: :class:`CanvasBatch`, images of one size stacked in
a tensor (B, 3, H, W), possibly padded at the bottom and right (``ResizeToCanvas``),
and :class:`~gattn_mm.models.utils.native_batch.NativeBatch`, images at their own
sizes (and slides) read on demand. The classifier, the sampler and the losses ask the
batch; none of them asks which kind it is. :func:`as_batch` wraps a tensor (the
input of ``mode='tensor'``, of ``tools/deployment/export_onnx.py``, of tests) as a
:class:`CanvasBatch`, with the extents its data samples give (the same in training
and at test time).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torchvision.ops import roi_align

from .ops import downsample, gray_std, image_extents
from .prediction_fields import set_original_boxes

Size = Tuple[Union[float, torch.Tensor], Union[float, torch.Tensor]]


class ImageBatch:
    """The protocol (see the module's docstring). Letters: B images, (h0, w0) the
    glance, (h, w) the attention grid."""

    extents: Optional[torch.Tensor] = None
    """(B, 2) the (h, w) in input pixels each image covers, or None when every image
    fills the input (then no cell is padding)."""

    input_size: Optional[Tuple[int, int]] = None
    """(H, W) of a stacked batch; None for images of their own sizes (their
    ``extents`` bound them)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def size(self, dim: int = 0) -> int:
        """B (a batch of images of their own sizes has no other dimension)."""
        if dim != 0:
            raise ValueError(f'a {type(self).__name__} has only a batch size (dim 0): its '
                             f'images may differ in size')
        return len(self)

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def glance(self, size: Tuple[int, int]) -> torch.Tensor:
        """(B, 3, h0, w0): the downsampled global view."""
        raise NotImplementedError

    def canvas(self, size: Tuple[int, int]) -> Size:
        """(H, W) the glance of ``size`` covers, in input pixels: two numbers, or two
        (B, 1) tensors (one virtual canvas per image)."""
        raise NotImplementedError

    def gray_std(self, grid: Tuple[int, int], samples: int = 32) -> torch.Tensor:
        """Contrast (B, h*w) of the full-resolution pixels in each cell
        (:func:`~gattn_mm.models.utils.ops.gray_std`)."""
        raise NotImplementedError

    def crop(self, boxes: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """Crops (B*M, 3, *size) of boxes (B, M, 4) xyxy in input pixels."""
        raise NotImplementedError

    def pixel_sizes(self) -> torch.Tensor:
        """(B, 2) µm per input pixel (y, x)."""
        raise ValueError(f'{type(self).__name__} has no pixel size: boxes in µm '
                         f'(sampler.box_size_um) need the images at their own size (the '
                         f'native path: NativeDataPreprocessor, e.g. configs/gattn_slides.py)')

    def tissue(self, grid: Tuple[int, int], samples: int = 8,
               background: str = 'bright') -> torch.Tensor:
        """(B, h, w) the share of tissue (on a ``background`` 'bright' or 'dark') in
        each cell."""
        raise ValueError(f'{type(self).__name__} has no tissue map: sampler.tissue_mask '
                         f'needs the images at their own size (the native path: '
                         f'NativeDataPreprocessor, e.g. configs/gattn_slides.py)')

    def set_original_boxes(self, samples: list, boxes: torch.Tensor,
                           global_size: Tuple[int, int]) -> None:
        """Set ``ori_boxes`` (N, 4), the boxes in the original image's pixels, on each
        sample (:func:`~gattn_mm.models.utils.prediction_fields.set_original_boxes`)."""
        raise NotImplementedError


class CanvasBatch(ImageBatch):
    """Images of one size, stacked: (B, 3, H, W), each covering ``extents`` of it.

    Args:
        images (Tensor): (B, 3, H, W), normalised.
        extents (Tensor, optional): (B, 2) the (h, w) each image covers (the rest is
            padding); None when every image fills the canvas.
    """

    def __init__(self, images: torch.Tensor, extents: Optional[torch.Tensor] = None):
        self.images = images
        self.extents = extents
        self.input_size = tuple(images.shape[-2:])

    @classmethod
    def from_samples(cls, images: torch.Tensor,
                     data_samples: Optional[Sequence] = None) -> 'CanvasBatch':
        """The batch with the extents of its samples' metainfo
        (:func:`~gattn_mm.models.utils.ops.image_extents`)."""
        return cls(images, image_extents(data_samples, images.shape[-2:], images.device))

    def __len__(self) -> int:
        return self.images.size(0)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def glance(self, size: Tuple[int, int]) -> torch.Tensor:
        return downsample(self.images, size)

    def canvas(self, size: Tuple[int, int]) -> Tuple[int, int]:
        return self.input_size

    def gray_std(self, grid: Tuple[int, int], samples: int = 32) -> torch.Tensor:
        return gray_std(self.images, grid, samples)

    def crop(self, boxes: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """All the boxes in one ``roi_align`` call (adaptive sampling: every input
        pixel of a large box is averaged)."""
        images = self.images
        # the image of each box, (B, M): counted over the boxes themselves (ones down
        # dim 0), not from a size, which an ONNX export would fix at its traced batch
        batch_idx = (boxes[..., 0].long() * 0 + 1).cumsum(0) - 1  # 0..B-1, any box value
        rois = torch.cat([batch_idx.reshape(-1, 1).to(images.dtype),
                          boxes.reshape(-1, 4).to(images.dtype)], dim=1)  # (B*M, 5)
        return roi_align(images, rois, output_size=size, spatial_scale=1.0,
                         sampling_ratio=0, aligned=True)

    def set_original_boxes(self, samples: List, boxes: torch.Tensor,
                           global_size: Tuple[int, int]) -> None:
        set_original_boxes(samples, boxes)


def as_batch(inputs: Union[torch.Tensor, ImageBatch],
             data_samples: Optional[Sequence] = None,
             extents: Optional[torch.Tensor] = None) -> ImageBatch:
    """``inputs`` as an :class:`ImageBatch`: a batch is returned as it is; a tensor
    (B, 3, H, W) becomes a :class:`CanvasBatch` with ``extents`` (B, 2) when given,
    else with the extents of ``data_samples``."""
    if isinstance(inputs, ImageBatch):
        return inputs
    if extents is not None:
        return CanvasBatch(inputs, extents)
    return CanvasBatch.from_samples(inputs, data_samples)
