import functools
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torchvision.ops import roi_align

from mmpretrain.registry import MODELS

IntPair = Union[int, Sequence[int]]


def _pair(value: Optional[IntPair], name: str) -> Optional[Tuple[int, int]]:
    if value is None:
        return None
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f'{name} must be a positive int or (h, w), got {value!r}')
    return int(pair[0]), int(pair[1])


@MODELS.register_module()
class InstanceSampler(BaseModule):
    """Attention map -> N boxes in input pixels -> N crops of the full-res input.

    Every cell of the attention map (B, h, w) stands for a window of the input
    (B, 3, H, W). The sampler picks N key instances and cuts them, at full
    resolution, with one batched ``torchvision.ops.roi_align`` call.

    Strategies (``train_strategy`` in training, ``test_strategy`` otherwise):

    - ``threshold`` (the paper's): the attention, brought to ``upsample`` times the
      cell grid, is thresholded at ``threshold`` x its maximum; the connected key
      regions are ranked by attention mass, each gives the box around it (at least
      ``box_size``). Missing regions are filled with the top cells.
    - ``topk``: the N cells of highest attention, greedily keeping a Chebyshev
      distance of at least ``min_distance`` cells between them when possible.
    - ``sample``: N cells drawn without replacement from the attention distribution
      (Gumbel-top-k); ``weights`` are those of the unbiased without-replacement
      estimator of the attention-weighted mean (Katharopoulos & Fleuret, 2019).

    Args:
        num_instances (int): N, boxes per image in training. Defaults to 8.
        test_num_instances (int, optional): N outside training (more boxes at test
            time cost little and raise recall). Defaults to ``num_instances``.
        crop_size (int | tuple): (h, w) of every crop fed to the local CNN.
        box_size (int | tuple, optional): box (h, w) in input pixels centred on a cell.
            Defaults to ``box_scale`` x the size of one cell.
        box_scale (float): box size in cells when ``box_size`` is None.
        train_strategy (str): one of ``threshold``, ``topk``, ``sample``.
        test_strategy (str): strategy outside training (deterministic by default).
        min_distance (int): minimum Chebyshev distance in cells for ``topk``.
        threshold (float): relative threshold for ``threshold``.
        upsample (int): grid upsampling factor of ``threshold``.
        sampling_ratio (int): ``roi_align`` sampling ratio (0: adaptive, averages
            every input pixel of a large box).
        centre (str): where a ``topk``/``sample`` box is centred: ``cell`` (the
            chosen cell's centre) or ``centroid`` (the attention-weighted centroid of
            the chosen cell and its 8 neighbours, so a structure that straddles cells
            lands in the middle of its box).
        jitter (float): in training only, every box centre moves by up to this
            fraction of the box side (uniform, per box and axis): the local CNN sees
            its instances at varied positions, an augmentation that costs nothing.
        scale_jitter (float): in training only, every box side is multiplied by
            ``exp(u)``, u uniform in [-scale_jitter, scale_jitter] (the instances at
            varied scales). Jittered boxes still stay inside the image.
        test_views (sequence of (dx, dy), optional): outside training, every box is
            also cut at these offsets, in fractions of its width and height (e.g.
            ``(0.07, 0)``: 7 % of the box to the right), and the classifier averages
            the reader's features over the views: test-time augmentation at the
            instance level, ``1 + len(test_views)`` reader passes per instance. The
            unshifted view is always the first. Defaults to None (one view).
    """
    STRATEGIES = ('threshold', 'topk', 'sample')
    CENTRES = ('cell', 'centroid')

    def __init__(self,
                 num_instances: int = 8,
                 test_num_instances: Optional[int] = None,
                 crop_size: IntPair = 64,
                 box_size: Optional[IntPair] = None,
                 box_scale: float = 1.5,
                 train_strategy: str = 'sample',
                 test_strategy: str = 'topk',
                 min_distance: int = 1,
                 threshold: float = 0.5,
                 upsample: int = 4,
                 sampling_ratio: int = 0,
                 centre: str = 'cell',
                 jitter: float = 0.,
                 scale_jitter: float = 0.,
                 test_views: Optional[Sequence[Sequence[float]]] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.test_views = self._parse_views(test_views)
        if jitter < 0 or scale_jitter < 0:
            raise ValueError(f'jitter and scale_jitter must be >= 0, got {jitter!r} and '
                             f'{scale_jitter!r}')
        self.jitter = float(jitter)
        self.scale_jitter = float(scale_jitter)
        if centre not in self.CENTRES:
            raise ValueError(f'centre must be one of {self.CENTRES}, got {centre!r}')
        self.centre = centre
        for key, value in (('train_strategy', train_strategy),
                           ('test_strategy', test_strategy)):
            if value not in self.STRATEGIES:
                raise ValueError(f'{key} must be one of {self.STRATEGIES}, got {value!r}')
        if num_instances < 1:
            raise ValueError(f'num_instances must be >= 1, got {num_instances}')
        self.train_num_instances = num_instances
        self.test_num_instances = test_num_instances or num_instances
        if self.test_num_instances < 1:
            raise ValueError(f'test_num_instances must be >= 1, got {test_num_instances}')
        self.crop_size = _pair(crop_size, 'crop_size')
        self.box_size = _pair(box_size, 'box_size')
        self.box_scale = box_scale
        self.train_strategy = train_strategy
        self.test_strategy = test_strategy
        self.min_distance = min_distance
        self.threshold = threshold
        self.upsample = upsample
        self.sampling_ratio = sampling_ratio

    @property
    def num_instances(self) -> int:
        """N of the current mode (training or not)."""
        return self.train_num_instances if self.training else self.test_num_instances

    @property
    def num_views(self) -> int:
        """Crops per instance in the current mode (``test_views`` outside training)."""
        return 1 if self.training else len(self.test_views)

    @staticmethod
    def _parse_views(views) -> Tuple[Tuple[float, float], ...]:
        parsed = [(0., 0.)]
        for view in views or ():
            if len(view) != 2 or not all(math.isfinite(float(d)) and abs(float(d)) < 1
                                         for d in view):
                raise ValueError(f'test_views must hold (dx, dy) pairs of box fractions '
                                 f'in (-1, 1), got {view!r}')
            if (float(view[0]), float(view[1])) not in parsed:
                parsed.append((float(view[0]), float(view[1])))
        return tuple(parsed)

    @property
    def strategy(self) -> str:
        return self.train_strategy if self.training else self.test_strategy

    # ---------------------------------------------------------------- boxes
    def _box_hw(self, grid: Tuple[int, int], image_size: Tuple[int, int]) -> Tuple[float, float]:
        if self.box_size is not None:
            return float(self.box_size[0]), float(self.box_size[1])
        return (self.box_scale * image_size[0] / grid[0],
                self.box_scale * image_size[1] / grid[1])

    @staticmethod
    def _clamp_boxes(cy: torch.Tensor, cx: torch.Tensor, bh: torch.Tensor, bw: torch.Tensor,
                     image_size: Tuple[int, int]) -> torch.Tensor:
        """Boxes (..., 4) xyxy of size (bh, bw) around (cy, cx), shifted inside the image.

        A box larger than the image shrinks to the image in that dimension.
        """
        H, W = image_size
        bh, bw = bh.clamp(max=H), bw.clamp(max=W)
        x1 = torch.minimum((cx - bw / 2).clamp(min=0), W - bw)
        y1 = torch.minimum((cy - bh / 2).clamp(min=0), H - bh)
        return torch.stack([x1, y1, x1 + bw, y1 + bh], dim=-1)

    def cell_boxes(self, index: torch.Tensor, grid: Tuple[int, int],
                   image_size: Tuple[int, int],
                   attention: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Boxes (B, N, 4) in input pixels for flat cell indices (B, N).

        With ``attention`` (B, h, w), the centres move to the attention centroid
        of each cell's 3x3 neighbourhood (see ``centre``).
        """
        h, w = grid
        H, W = image_size
        oy = ox = 0.
        if attention is not None:
            oy, ox = self.centroid_offsets(attention, index)
        cy = ((index // w).float() + 0.5 + oy) * (H / h)
        cx = ((index % w).float() + 0.5 + ox) * (W / w)
        bh, bw = self._box_hw(grid, image_size)
        return self._clamp_boxes(cy, cx, torch.full_like(cy, bh), torch.full_like(cx, bw),
                                 image_size)

    @staticmethod
    def centroid_offsets(attention: torch.Tensor,
                         index: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Offsets (B, N) in cells from each chosen cell to the attention centroid
        of its 3x3 neighbourhood (no gradient); within [-1, 1]."""
        B, h, w = attention.shape
        patches = F.unfold(F.pad(attention.detach()[:, None], (1, 1, 1, 1)), 3)  # (B, 9, hw)
        p = patches.gather(2, index[:, None, :].expand(-1, 9, -1))  # (B, 9, N)
        step = torch.arange(-1., 2., device=attention.device, dtype=attention.dtype)
        dy = step.repeat_interleave(3)[None, :, None]  # row offset of each of the 9
        dx = step.repeat(3)[None, :, None]
        mass = p.sum(1).clamp_min(1e-12)
        return (p * dy).sum(1) / mass, (p * dx).sum(1) / mass

    # ----------------------------------------------------------- strategies
    @staticmethod
    @functools.lru_cache(maxsize=8)
    def near_cells(grid: Tuple[int, int], min_distance: int,
                   device: torch.device) -> torch.Tensor:
        """(h*w, h*w) float mask, 1 where two cells of the grid are closer than
        ``min_distance`` (Chebyshev distance; cached)."""
        h, w = grid
        rows = torch.arange(h * w, device=device) // w
        cols = torch.arange(h * w, device=device) % w
        dist = torch.maximum((rows[:, None] - rows[None]).abs(),
                             (cols[:, None] - cols[None]).abs())
        return (dist < min_distance).float()

    def _select_topk(self, probs: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Flat indices (B, N) of the top cells with non-maximum suppression."""
        n = self.num_instances
        if self.min_distance <= 1 or n == 1:
            return probs.topk(min(n, probs.size(1)), dim=1).indices.repeat(
                1, math.ceil(n / probs.size(1)))[:, :n]
        near = self.near_cells(grid, self.min_distance, probs.device).to(probs.dtype)
        # Every cell has a level: 0 free, 1 blocked (too close to a pick), 2 taken.
        # The argmax of probs - level * span prefers free cells, then blocked ones
        # (when every free cell is gone), then taken ones (N > h*w), each by
        # attention. Few ops per pick, all out of place: cheap and ONNX-exportable.
        span = 1 + (probs.max(dim=1, keepdim=True).values
                    - probs.min(dim=1, keepdim=True).values)  # (B, 1)
        level = torch.zeros_like(probs)
        taken = torch.full_like(probs[:, :1], 2.)
        picks = []
        for _ in range(n):
            idx = (probs - level * span).argmax(dim=1)  # (B,)
            picks.append(idx)
            level = torch.maximum(level, near[idx])
            level = level.scatter(1, idx[:, None], taken)
        return torch.stack(picks, dim=1)

    def _select_sample(self, probs: torch.Tensor) -> torch.Tensor:
        """Gumbel-top-k: N draws without replacement from ``probs`` (B, hw)."""
        n = min(self.num_instances, probs.size(1))
        uniform = torch.rand_like(probs).clamp_(1e-12, 1 - 1e-12)
        keys = probs.clamp_min(1e-20).log() - (-uniform.log()).log()
        idx = keys.topk(n, dim=1).indices
        return idx.repeat(1, math.ceil(self.num_instances / n))[:, :self.num_instances]

    @staticmethod
    def unbiased_weights(selected: torch.Tensor) -> torch.Tensor:
        """Weights (B, N) of the without-replacement estimator of sum_k a_k f_k.

        ``selected`` holds the attention of the N draws in draw order. Estimate k is
        ``sum_{j<k} a_j f_j + (1 - sum_{j<k} a_j) f_k``; their mean gives draw m the
        weight ``((1 - S_{m-1}) + (N - m) a_m) / N``. The weights sum to 1 and carry
        the gradient to the attention.
        """
        n = selected.size(1)
        before = selected.cumsum(dim=1) - selected  # S_{m-1}
        later = torch.arange(n - 1, -1, -1, device=selected.device, dtype=selected.dtype)
        return ((1 - before) + later * selected) / n

    def _select_threshold(self, attention: torch.Tensor,
                          image_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Boxes (B, N, 4) and masses (B, N) of the thresholded key regions.

        Boxes come from the detached map; masses keep the gradient.
        """
        B, h, w = attention.shape
        H, W = image_size
        gh, gw = h * self.upsample, w * self.upsample
        up = F.interpolate(attention[:, None], size=(gh, gw), mode='bilinear',
                           align_corners=False)[:, 0]
        up = up / up.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]
        peak = up.detach().flatten(1).max(1).values[:, None, None]
        mask = up.detach() >= self.threshold * peak  # (B, gh, gw)
        labels = self.connected_components(mask).flatten(1)  # (B, P), 0 = background
        P = gh * gw
        ys = (torch.arange(P, device=up.device) // gw).float().expand(B, P)
        xs = (torch.arange(P, device=up.device) % gw).float().expand(B, P)
        big = torch.full((B, P + 1), float(P), device=up.device)
        small = torch.full((B, P + 1), -1., device=up.device)
        mass = torch.zeros(B, P + 1, device=up.device).scatter_add(1, labels, up.flatten(1))
        y1 = big.scatter_reduce(1, labels, ys, 'amin')
        x1 = big.scatter_reduce(1, labels, xs, 'amin')
        y2 = small.scatter_reduce(1, labels, ys, 'amax') + 1
        x2 = small.scatter_reduce(1, labels, xs, 'amax') + 1
        mass[:, 0] = -1  # background is never a region
        n = self.num_instances
        k = min(n, P + 1)
        top_mass, top = mass.topk(k, dim=1)
        top, top_mass = top.repeat(1, math.ceil(n / k))[:, :n], top_mass.repeat(
            1, math.ceil(n / k))[:, :n]
        g = lambda t: t.gather(1, top)  # noqa: E731
        sy, sx = H / gh, W / gw
        cy, cx = (g(y1) + g(y2)) / 2 * sy, (g(x1) + g(x2)) / 2 * sx
        min_h, min_w = self._box_hw((h, w), image_size)
        bh = ((g(y2) - g(y1)) * sy).clamp(min=min_h)
        bw = ((g(x2) - g(x1)) * sx).clamp(min=min_w)
        boxes = self._clamp_boxes(cy, cx, bh, bw, image_size)
        # fewer regions than N: fill the remaining slots with the top cells
        valid = (top_mass > 0)
        n_valid = valid.sum(1, keepdim=True)
        slot = torch.arange(n, device=up.device).expand(B, n)
        fill_idx = self._select_topk(attention.detach().flatten(1), (h, w))
        fill_idx = fill_idx.gather(1, (slot - n_valid).clamp(min=0))
        fill = self.cell_boxes(fill_idx, (h, w), image_size)
        fill_mass = attention.flatten(1).gather(1, fill_idx)
        boxes = torch.where(valid[..., None], boxes, fill)
        return boxes.detach(), torch.where(valid, top_mass, fill_mass)

    @staticmethod
    def connected_components(mask: torch.Tensor) -> torch.Tensor:
        """8-connected component labels (B, h, w) of a bool mask; 0 = background."""
        B, h, w = mask.shape
        m = mask[:, None].float()
        labels = (torch.arange(1, h * w + 1, device=mask.device, dtype=torch.float32)
                  .view(1, 1, h, w) * m)
        for _ in range(h * w):
            grown = F.max_pool2d(labels, 3, stride=1, padding=1) * m
            if torch.equal(grown, labels):
                break
            labels = grown
        return labels[:, 0].long()

    def jitter_boxes(self, boxes: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
        """Boxes (B, N, 4) moved and rescaled at random (training augmentation, see
        ``jitter`` and ``scale_jitter``), kept inside the image."""
        cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
        bw, bh = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        u = torch.rand(4, *boxes.shape[:2], device=boxes.device, dtype=boxes.dtype) * 2 - 1
        scale = (u[0] * self.scale_jitter).exp()
        bw, bh = bw * scale, bh * scale
        cx, cy = cx + u[1] * self.jitter * bw, cy + u[2] * self.jitter * bh
        return self._clamp_boxes(cy, cx, bh, bw, image_size)

    # --------------------------------------------------------------- public
    def forward(self, attention: torch.Tensor,
                image_size: Tuple[int, int]) -> Dict[str, torch.Tensor]:
        """Choose N instances per image.

        Args:
            attention (Tensor): (B, h, w), sums to 1 over the cells of each image.
            image_size (tuple): (H, W) of the full-resolution input.

        Returns:
            dict: ``boxes`` (B, N, 4) xyxy in input pixels (no gradient), ``scores``
            (B, N) attention mass of each instance, ``weights`` (B, N) fusion weights
            that sum to 1 and carry the gradient to the attention.
        """
        B, h, w = attention.shape
        probs = attention.flatten(1)  # (B, h*w)
        strategy = self.strategy
        if strategy == 'threshold':
            boxes, scores = self._select_threshold(attention, image_size)
            if self.training and (self.jitter or self.scale_jitter):
                boxes = self.jitter_boxes(boxes, image_size)
            weights = scores / scores.sum(1, keepdim=True).clamp_min(1e-12)
            return dict(boxes=boxes, scores=scores, weights=weights)
        if strategy == 'sample':
            idx = self._select_sample(probs.detach())
            scores = probs.gather(1, idx)
            weights = self.unbiased_weights(scores)
        else:
            idx = self._select_topk(probs.detach(), (h, w))
            scores = probs.gather(1, idx)
            weights = scores / scores.sum(1, keepdim=True).clamp_min(1e-12)
        boxes = self.cell_boxes(idx, (h, w), image_size,
                                attention if self.centre == 'centroid' else None)
        if self.training and (self.jitter or self.scale_jitter):
            boxes = self.jitter_boxes(boxes, image_size)
        return dict(boxes=boxes, scores=scores, weights=weights, index=idx)

    def view_boxes(self, boxes: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
        """Boxes (B, N, K, 4) of the K = ``num_views`` views of boxes (B, N, 4), moved
        by the view offsets (fractions of each box) and kept inside the image."""
        if self.num_views == 1:
            return boxes[:, :, None]
        offsets = boxes.new_tensor(self.test_views)  # (K, 2)
        bw = (boxes[..., 2] - boxes[..., 0])[..., None]  # (B, N, 1)
        bh = (boxes[..., 3] - boxes[..., 1])[..., None]
        cx = (boxes[..., 0] + boxes[..., 2])[..., None] / 2 + offsets[:, 0] * bw  # (B, N, K)
        cy = (boxes[..., 1] + boxes[..., 3])[..., None] / 2 + offsets[:, 1] * bh
        return self._clamp_boxes(cy, cx, bh.expand_as(cy), bw.expand_as(cx), image_size)

    def crop(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Cut all boxes (and their ``test_views``) from the full-resolution images in
        one ``roi_align`` call.

        Args:
            images (Tensor): (B, 3, H, W).
            boxes (Tensor): (B, N, 4) xyxy in input pixels.

        Returns:
            Tensor: crops (B*N*K, 3, *crop_size), K = ``num_views``, ordered
            image-major, then instance, then view (view 0 is the box itself).
        """
        boxes = self.view_boxes(boxes, tuple(images.shape[-2:]))  # (B, N, K, 4)
        B, N, K, _ = boxes.shape
        batch_idx = torch.arange(B, device=boxes.device, dtype=images.dtype)
        rois = torch.cat([batch_idx.repeat_interleave(N * K)[:, None],
                          boxes.reshape(B * N * K, 4).to(images.dtype)], dim=1)
        return roi_align(images, rois, output_size=self.crop_size,
                         spatial_scale=1.0, sampling_ratio=self.sampling_ratio,
                         aligned=True)
