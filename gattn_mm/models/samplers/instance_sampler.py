import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ..selectors import BaseSelector
from ..utils import (ImageBatch, Selection, as_batch, int_pair, is_positive_number,
                     positive_number, zscore)

IntPair = Union[int, Sequence[int]]
FloatPair = Union[float, Sequence[float]]
MIN_TISSUE = 0.5  # a cell is tissue when at least half its pixels are
PRIOR_TEMPERATURE = 0.5  # of the contrast prior that explore_prior mixes in (as the recipe's loss)
# sampler.tissue_mask -> the background of tissue_mask (None: no mask)
TISSUE_BACKGROUNDS = {False: None, True: 'bright', 'brightfield': 'bright',
                      'fluorescence': 'dark'}
ImageSize = Tuple[Union[float, torch.Tensor], Union[float, torch.Tensor]]


def _views(views: Optional[Sequence[Sequence[float]]]) -> Tuple[Tuple[float, float], ...]:
    parsed = [(0., 0.)]
    for view in views or ():
        if len(view) != 2 or not all(math.isfinite(float(d)) and abs(float(d)) < 1
                                     for d in view):
            raise ValueError(f'sampler.test_cfg.views must hold (dx, dy) pairs of box '
                             f'fractions in (-1, 1), got {view!r}')
        if (float(view[0]), float(view[1])) not in parsed:
            parsed.append((float(view[0]), float(view[1])))
    return tuple(parsed)


def positive_pair(value: FloatPair, key: str) -> Tuple[float, float]:
    """``value`` (``s`` or ``(h, w)``) as an (h, w) pair of finite floats > 0; the error
    names the config ``key``."""
    pair = (value, value) if isinstance(value, numbers.Real) else \
        tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else ()
    if len(pair) != 2 or not all(is_positive_number(v) for v in pair):
        raise ValueError(f'{key} must be a positive number or (h, w), got {value!r}')
    return float(pair[0]), float(pair[1])


def clamp_boxes(cy: torch.Tensor, cx: torch.Tensor, bh: torch.Tensor, bw: torch.Tensor,
                image_size) -> torch.Tensor:
    """Boxes (..., 4) xyxy of size (bh, bw) around (cy, cx), shifted inside the image;
    a box larger than the image shrinks to the image in that dimension.
    ``image_size`` is (H, W), or a pair of tensors broadcastable to ``cy``."""
    H, W = image_size
    if isinstance(H, torch.Tensor):
        bh, bw = torch.minimum(bh, H), torch.minimum(bw, W)
    else:
        bh, bw = bh.clamp(max=H), bw.clamp(max=W)
    x1 = torch.minimum((cx - bw / 2).clamp(min=0), W - bw)
    y1 = torch.minimum((cy - bh / 2).clamp(min=0), H - bh)
    return torch.stack([x1, y1, x1 + bw, y1 + bh], dim=-1)


@MODELS.register_module()
class InstanceSampler(BaseModule):
    """Attention map -> N boxes in input pixels -> the crops of the full-res input.

    Every cell of the attention map (B, h, w) stands for a window of the input
    (B, 3, H, W). The ``selector`` chooses N instances (centres in cells); the
    sampler maps them to boxes of ``box_size`` pixels (or ``box_size_um`` µm, or
    ``box_scale`` cells, or a selector's region when larger), kept inside the image,
    and cuts them at full resolution with one batched ``torchvision.ops.roi_align``.

    On images at their own size (``NativeBatch``: slides) a box may be given in µm: it
    is then ``box_size_um / pixel size`` native pixels of each image, the pixel size
    read from the slide's metadata (an image without one is refused by name). With
    ``tissue_mask``, only cells that are at least half tissue (Otsu's threshold on a
    low-resolution view, ``gattn_mm.utils.tissue``) are chosen: an instance the
    selector places on glass takes the place of one of the image's instances on
    tissue (repeated in rank order), so no box is centred on glass; an image without
    any tissue cell keeps its selection.

    Args:
        num_instances (int): N in training. Defaults to 8.
        crop_size (int | tuple): (h, w) of every crop fed to the reader.
        selector (dict): the selector in training, e.g. ``dict(type='TopKSelector')``
            (see ``gattn_mm/models/selectors``). Defaults to ``TopKSelector``.
        box_size (int | tuple, optional): box (h, w) in input pixels. Give this or
            ``box_scale``.
        box_size_um (float | tuple, optional): box (h, w) in µm (native path, slides
            with a pixel size). Give one of ``box_size``, ``box_size_um`` and
            ``box_scale``.
        box_scale (float, optional): box side in cells (1.5 when none is given).
        tissue_mask (bool | str): choose only cells on tissue: ``True`` or
            ``'brightfield'`` (glass is bright: H&E, IHC), ``'fluorescence'`` (the
            background is dark). Native path only. Defaults to False.
        refiner (dict, optional): moves every box onto the structure within its
            reach at full resolution, e.g. ``dict(type='ContrastPeakRefiner')``, in
            training and at test time. Defaults to None (boxes stay on the grid).
        explore_prior (float): p, in training the selector chooses from
            ``(1 - p) * attention + p * prior``, the prior the softmax of the
            z-scored contrast of each cell at full resolution (as
            ``ContrastPriorLoss`` teaches it): the reader sees the salient
            structures while the glance's attention is still untrained. Native path
            only. Defaults to 0 (the attention alone).
        test_cfg (dict, optional): outside training: ``num_instances`` (N; defaults
            to the training N), ``selector`` (defaults to the training selector),
            ``explore_prior`` (p outside training; defaults to 0: the attention
            alone), ``views``: (dx, dy) offsets in fractions of a box; every box is
            also cut at these offsets and the classifier averages the reader's
            features over the V = 1 + len(views) views (view 0 is the box itself).
    """
    TEST_KEYS = ('num_instances', 'selector', 'explore_prior', 'views')

    def __init__(self,
                 num_instances: int = 8,
                 crop_size: IntPair = 64,
                 selector: dict = dict(type='TopKSelector'),
                 box_size: Optional[IntPair] = None,
                 box_scale: Optional[float] = None,
                 box_size_um: Optional[FloatPair] = None,
                 tissue_mask: Union[bool, str] = False,
                 refiner: Optional[dict] = None,
                 explore_prior: float = 0.,
                 test_cfg: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        test_cfg = dict(test_cfg or {})
        unknown = sorted(set(test_cfg) - set(self.TEST_KEYS))
        if unknown:
            raise ValueError(f'sampler.test_cfg has unknown keys {unknown}; expected some '
                             f'of {list(self.TEST_KEYS)}')
        self.train_num_instances = self._count(num_instances, 'sampler.num_instances')
        self.test_num_instances = self._count(test_cfg.get('num_instances', num_instances),
                                              'sampler.test_cfg.num_instances')
        given = [k for k, v in (('box_size', box_size), ('box_size_um', box_size_um),
                                ('box_scale', box_scale)) if v is not None]
        if len(given) > 1:
            raise ValueError(f'sampler: give one of box_size (pixels), box_size_um (µm) or '
                             f'box_scale (cells), got {" and ".join(given)}')
        if not (isinstance(tissue_mask, bool) or
                isinstance(tissue_mask, str) and tissue_mask in TISSUE_BACKGROUNDS):
            raise ValueError(f'sampler.tissue_mask must be one of '
                             f'{list(TISSUE_BACKGROUNDS)}, got {tissue_mask!r}')
        self.train_explore_prior = self._share(explore_prior, 'sampler.explore_prior')
        self.test_explore_prior = self._share(test_cfg.get('explore_prior', 0.),
                                              'sampler.test_cfg.explore_prior')
        self.crop_size = int_pair(crop_size, 'sampler.crop_size')
        self.box_size = None if box_size is None else int_pair(box_size, 'sampler.box_size')
        self.box_size_um = None if box_size_um is None else \
            positive_pair(box_size_um, 'sampler.box_size_um')
        self.box_scale = 1.5 if box_scale is None else \
            positive_number(box_scale, 'sampler.box_scale')
        self.tissue_mask = tissue_mask
        self.tissue_background = TISSUE_BACKGROUNDS[tissue_mask]  # None: no mask
        self.selector = self._build(selector, 'sampler.selector')
        self.test_selector = (self._build(test_cfg['selector'], 'sampler.test_cfg.selector')
                              if 'selector' in test_cfg else self.selector)
        self.test_views = _views(test_cfg.get('views'))
        self.refiner = None if refiner is None else MODELS.build(refiner)
        # (V, 2) on the model's device: no host-to-device copy in a forward
        self.register_buffer('view_offsets', torch.tensor(self.test_views), persistent=False)

    @staticmethod
    def _count(value, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                int(value) != value or value < 1:
            raise ValueError(f'{key} must be an int >= 1, got {value!r}')
        return int(value)

    @staticmethod
    def _share(value, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not 0 <= value <= 1:
            raise ValueError(f'{key} must be a number in [0, 1], got {value!r}')
        return float(value)

    @staticmethod
    def _build(cfg, key: str) -> nn.Module:
        selector = cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)
        if not isinstance(selector, BaseSelector):
            raise TypeError(f'{key} must build a BaseSelector (gattn_mm/models/selectors), '
                            f'got {type(selector).__name__}')
        return selector

    @property
    def num_instances(self) -> int:
        """N of the current mode (training or not)."""
        return self.train_num_instances if self.training else self.test_num_instances

    @property
    def num_views(self) -> int:
        """V, crops per instance in the current mode."""
        return 1 if self.training else len(self.test_views)

    @property
    def explore_prior(self) -> float:
        """p of the current mode: the share of the contrast prior in the choice."""
        return self.train_explore_prior if self.training else self.test_explore_prior

    @property
    def active_selector(self) -> BaseSelector:
        return self.selector if self.training else self.test_selector

    def forward(self, attention: torch.Tensor, image_size: ImageSize,
                extents: Optional[torch.Tensor] = None,
                images: Optional[ImageBatch] = None
                ) -> Tuple[Selection, torch.Tensor]:
        """Choose N instances of each image and place their boxes.

        Args:
            attention (Tensor): (B, h, w), sums to 1 over the cells of each image.
            image_size (tuple): (H, W) of the full-resolution input, or two (B, 1)
                tensors: each image's virtual canvas (``ImageBatch.canvas``).
            extents (Tensor, optional): (B, 2) the (h, w) in input pixels each image
                covers when it was padded to (H, W): cells that are only padding are
                never chosen and the boxes stay inside the image.
            images (ImageBatch, optional): the images, where ``box_size_um`` or
                ``tissue_mask`` asks them for their pixel size or tissue (only images
                at their own size, ``NativeBatch``, know them) or the ``refiner``
                reads them.

        Returns:
            tuple: the selector's :class:`Selection` and the boxes (B, N, 4) xyxy in
            input pixels (no gradient).
        """
        needs = [k for k in ('box_size_um', 'tissue_mask', 'refiner', 'explore_prior')
                 if getattr(self, k) not in (None, False, 0.)]
        if needs and images is None:
            key = 'test_cfg.explore_prior' if needs[0] == 'explore_prior' and \
                not self.training else needs[0]  # the share of the current mode
            raise ValueError(f'sampler.{key} needs the images at their own size (the '
                             f'native path: NativeDataPreprocessor, e.g. '
                             f'configs/gattn_slides.py), got none')
        if extents is not None:
            attention = self.mask_padding(attention, image_size, extents)
        tissue = None
        if self.tissue_background is not None:
            tissue = images.tissue(tuple(attention.shape[-2:]), background=self.tissue_background
                                   ) >= MIN_TISSUE  # (B, h, w)
            tissue |= ~tissue.flatten(1).any(1)[:, None, None]  # no tissue: every cell
            masked = attention * tissue
            attention = masked / masked.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]
        if self.explore_prior > 0:
            attention = self.explore(attention, images, image_size, extents)
        selection = self.active_selector(attention, self.num_instances)
        if tissue is not None:
            selection = self.onto_tissue(selection, tissue)
        box_px = None
        if self.box_size_um is not None:
            box_px = selection.centres.new_tensor(self.box_size_um) / \
                images.pixel_sizes().to(selection.centres)  # (B, 2)
        boxes = self.boxes(selection, tuple(attention.shape[-2:]), image_size, extents,
                           box_px)
        if self.refiner is not None:
            bounds = image_size if extents is None else \
                (extents[:, :1].to(boxes), extents[:, 1:].to(boxes))
            boxes = self.refiner(as_batch(images), boxes, bounds)
        return selection, boxes

    def explore(self, attention: torch.Tensor, images: ImageBatch, image_size: ImageSize,
                extents: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(1 - p) * attention + p * prior`` (B, h, w), p = ``explore_prior``, the
        prior the softmax of the z-scored contrast of the cells (padding excluded)."""
        grid = tuple(attention.shape[-2:])
        prior = (zscore(as_batch(images).gray_std(grid)) / PRIOR_TEMPERATURE).softmax(1)
        prior = prior.view_as(attention).to(attention.dtype)
        if extents is not None:
            prior = self.mask_padding(prior, image_size, extents)
        return (1 - self.explore_prior) * attention + self.explore_prior * prior

    @staticmethod
    def onto_tissue(selection: Selection, tissue: torch.Tensor) -> Selection:
        """The selection with every instance whose centre lies in a cell off
        ``tissue`` (B, h, w) bool replaced by the image's instances on it, repeated in
        rank order (centre, scores, extent, index; the weights renormalised over N)."""
        B, h, w = tissue.shape
        rows = selection.centres[..., 0].floor().long().clamp(0, h - 1)  # (B, N)
        cols = selection.centres[..., 1].floor().long().clamp(0, w - 1)
        on = tissue[torch.arange(B, device=tissue.device)[:, None], rows, cols]  # (B, N)
        if bool(on.all()):
            return selection
        src = torch.arange(on.size(1), device=on.device).repeat(B, 1)  # (B, N)
        for b in range(B):
            kept = on[b].nonzero().view(-1)
            off = (~on[b]).nonzero().view(-1)
            if len(kept) and len(off):
                src[b, off] = kept[torch.arange(len(off), device=on.device) % len(kept)]

        def take(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            if t is None:
                return None
            index = src.view(B, -1, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
            return t.gather(1, index)

        weights = take(selection.weights)
        return Selection(centres=take(selection.centres), scores=take(selection.scores),
                         weights=weights / weights.sum(1, keepdim=True).clamp_min(1e-12),
                         extents=take(selection.extents), index=take(selection.index))

    @staticmethod
    def mask_padding(attention: torch.Tensor, image_size: ImageSize,
                     extents: torch.Tensor) -> torch.Tensor:
        """The attention (B, h, w) with the cells that start beyond each image's
        extent (B, 2) set to zero, renormalised."""
        B, h, w = attention.shape
        extents = extents.to(attention.device)
        height, width = (torch.as_tensor(v, dtype=extents.dtype, device=attention.device)
                         .reshape(-1, 1) for v in image_size)  # (B or 1, 1)
        rows = torch.arange(h, device=attention.device) * (height / h)  # cell tops
        cols = torch.arange(w, device=attention.device) * (width / w)
        keep = (rows[:, :, None] < extents[:, 0, None, None]) & \
            (cols[:, None, :] < extents[:, 1, None, None])  # (B, h, w)
        masked = attention * keep
        return masked / masked.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]

    def boxes(self, selection: Selection, grid: Tuple[int, int],
              image_size: ImageSize, extents: Optional[torch.Tensor] = None,
              box_px: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Boxes (B, N, 4) in input pixels of a selection over a (h, w) grid, inside
        each image's extent (B, 2) when given. ``image_size``: the (H, W) the grid
        covers, two numbers or two (B, 1) tensors (one canvas per image).
        ``box_px`` (B, 2): each image's box (h, w) in its pixels (from
        ``box_size_um``); else ``box_size`` or ``box_scale``."""
        sy, sx = image_size[0] / grid[0], image_size[1] / grid[1]  # cell size in px
        cy, cx = selection.centres[..., 0] * sy, selection.centres[..., 1] * sx
        bh, bw = ((box_px[:, :1], box_px[:, 1:]) if box_px is not None else
                  (float(self.box_size[0]), float(self.box_size[1])) if self.box_size
                  else (self.box_scale * sy, self.box_scale * sx))
        bh, bw = (torch.as_tensor(v, dtype=cy.dtype, device=cy.device).expand_as(cy)
                  for v in (bh, bw))
        if selection.extents is not None:
            bh = torch.maximum(bh, selection.extents[..., 0] * sy)
            bw = torch.maximum(bw, selection.extents[..., 1] * sx)
        if extents is not None:
            extents = extents.to(cy)
            image_size = (extents[:, :1], extents[:, 1:])  # (B, 1) each
        return clamp_boxes(cy, cx, bh, bw, image_size).detach()

    def view_boxes(self, boxes: torch.Tensor, image_size: Tuple[int, int],
                   extents: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Boxes (B, N, V, 4) of the V = ``num_views`` views of boxes (B, N, 4), moved
        by the view offsets (fractions of each box) and kept inside the image (inside
        each image's extent (B, 2) when given)."""
        if self.num_views == 1:
            return boxes[:, :, None]
        offsets = self.view_offsets.to(boxes.dtype)  # (V, 2)
        bw = (boxes[..., 2] - boxes[..., 0])[..., None]  # (B, N, 1)
        bh = (boxes[..., 3] - boxes[..., 1])[..., None]
        cx = (boxes[..., 0] + boxes[..., 2])[..., None] / 2 + offsets[:, 0] * bw  # (B, N, V)
        cy = (boxes[..., 1] + boxes[..., 3])[..., None] / 2 + offsets[:, 1] * bh
        if extents is not None:
            extents = extents.to(cy)
            image_size = (extents[:, None, :1], extents[:, None, 1:])  # (B, 1, 1) each
        return clamp_boxes(cy, cx, bh.expand_as(cy), bw.expand_as(cx), image_size)

    def crop(self, images: Union[torch.Tensor, ImageBatch], boxes: torch.Tensor,
             extents: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Cut all boxes and their views from the images.

        Args:
            images (Tensor | ImageBatch): (B, 3, H, W) (one ``roi_align`` call), or
                images at their own sizes, each read at the coarsest level that holds
                a crop's pixels.
            boxes (Tensor): (B, N, 4) xyxy in input pixels.
            extents (Tensor, optional): (B, 2) each padded image's extent, for a
                tensor (a batch knows its own): the views stay inside it.

        Returns:
            Tensor: crops (B*N*V, 3, *crop_size), V = ``num_views``, ordered
            image-major, then instance, then view (view 0 is the box itself).
        """
        images = as_batch(images, extents=extents)
        boxes = self.view_boxes(boxes, images.input_size, images.extents)  # (B, N, V, 4)
        return images.crop(boxes.flatten(1, 2), self.crop_size)
