from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import record_function

from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

Size = Union[int, Sequence[int]]


def pool_feature(outs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """Last backbone output as a vector (B, C): maps are averaged over space."""
    feat = outs[-1] if isinstance(outs, (tuple, list)) else outs
    if isinstance(feat, (tuple, list)):  # e.g. ViT's (patch_token, cls_token)
        feat = feat[-1]
    return feat.mean(dim=(2, 3)) if feat.dim() == 4 else feat.flatten(1)


def area_resize(inputs: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Mean over the windows of a (h, w) grid: (B, C, H, W) -> (B, C, h, w).

    The result of ``F.adaptive_avg_pool2d``. When H and W are multiples of h and w it
    is computed as two reshape-means, a single pass over memory: on a CPU that is
    about 3x faster than adaptive pooling for a 4096 px input, where this resize is
    the largest cost of a gattn step (tools/benchmarks/resolution.py).
    """
    H, W = inputs.shape[-2:]
    h, w = size
    if H % h or W % w:
        return F.adaptive_avg_pool2d(inputs, size)
    rows = inputs.unflatten(-2, (h, H // h)).mean(dim=-2)  # (B, C, h, W)
    return rows.unflatten(-1, (w, W // w)).mean(dim=-1)  # (B, C, h, w)


@MODELS.register_module()
class GatedAttentionClassifier(BaseClassifier):
    """Glance, attend, zoom: the classifier of Fan et al., MICCAI 2020.

    The full-resolution input (B, 3, H, W) is resized to ``global_size``; the
    backbone's last map (B, C, h, w) goes to the gated attention ``neck``, which gives
    the attention (B, h, w) and the global feature (B, C). The ``sampler`` turns the
    attention into N boxes and crops them from the full-resolution input,
    (B*N, 3, s, s); ``local_backbone`` (the backbone itself when omitted) reads them,
    (B, N, C'); the ``head`` fuses global and local features.

    Args:
        backbone (dict): any mmpretrain backbone that returns a feature map.
        neck (dict): ``GatedAttentionNeck`` config.
        sampler (dict): ``InstanceSampler`` config.
        head (dict): ``FusionHead`` config.
        local_backbone (dict, optional): backbone of the crops; shares ``backbone``'s
            weights when None.
        global_size (int | tuple): (h0, w0) of the downsampled global view.
        global_resize (str): interpolation of the global view: ``area`` (antialiased
            for integer factors) or ``bilinear``.
        train_cfg (dict, optional): ``entropy_weight`` (float) adds
            ``-entropy_weight * mean attention entropy`` as ``loss_entropy`` (a positive
            weight keeps the attention spread, as in attention sampling).
            ``distill_weight`` (float) adds ``loss_distill``, the KL divergence from
            the local reader's evidence to the attention over the sampled instances:
            the attention learns to rank cells as the full-resolution crops do.
            Evidence of an instance is the log-odds of the positive classes
            (1..K-1) against class 0, so class 0 must be the negative/"absent"
            class; ``distill_temperature`` (default 1) softens it. Needs the head's
            local classifier (``local_loss_weight > 0``). ``prior_weight`` (float)
            adds ``loss_prior``, the KL divergence from a label-free contrast prior
            over *all* cells (z-scored standard deviation of the full-resolution
            pixels inside each cell, softened by ``distill_temperature``) to the
            attention: structures stand out from a flatter background, so the
            glance learns where the instances are in the first epoch. The prior
            reads about ``PRIOR_SAMPLES`` pixels per cell side (a regular
            subsample of larger cells), so its cost does not grow with the
            input. Other keys
            (``augments``) go to the data preprocessor as batch augments.
        data_preprocessor (dict, optional): defaults to ``ClsDataPreprocessor``.
        init_cfg (dict, optional): initialisation config.
    """

    PRIOR_SAMPLES = 32  # about this many pixels per cell side feed the contrast prior

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 sampler: dict,
                 head: dict,
                 local_backbone: Optional[dict] = None,
                 global_size: Size = 224,
                 global_resize: str = 'area',
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        train_cfg = dict(train_cfg or {})
        self.entropy_weight = float(train_cfg.pop('entropy_weight', 0.))
        self.distill_weight = float(train_cfg.pop('distill_weight', 0.))
        self.distill_temperature = float(train_cfg.pop('distill_temperature', 1.))
        self.distill_target = train_cfg.pop('distill_target', 'evidence')
        self.prior_weight = float(train_cfg.pop('prior_weight', 0.))
        if self.distill_target not in ('evidence', 'contrast', 'both'):
            raise ValueError(f"train_cfg.distill_target must be 'evidence', 'contrast' or "
                             f"'both', got {self.distill_target!r}")
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        if train_cfg:
            data_preprocessor.setdefault('batch_augments', train_cfg)
        data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        if global_resize not in ('area', 'bilinear'):
            raise ValueError(f"global_resize must be 'area' or 'bilinear', got {global_resize!r}")
        gs = (global_size, global_size) if isinstance(global_size, int) else tuple(global_size)
        self.global_size = (int(gs[0]), int(gs[1]))
        self.global_resize = global_resize
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.sampler = MODELS.build(sampler)
        self.head = MODELS.build(head)
        self.local_backbone = MODELS.build(local_backbone) if local_backbone else None
        self._check_channels()

    # ---------------------------------------------------------------- checks
    @property
    def crop_backbone(self) -> nn.Module:
        return self.local_backbone if self.local_backbone is not None else self.backbone

    @torch.no_grad()
    def _check_channels(self) -> None:
        """Dry-run both paths on zeros so a channel mismatch fails at build time."""
        modules = [self.backbone, self.crop_backbone]
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()  # note: mmpretrain's ResNet.train() returns None, do not chain
        try:
            outs = self.backbone(torch.zeros(1, 3, *self.global_size))
            feat = outs[-1] if isinstance(outs, (tuple, list)) else outs
            name = type(self.backbone).__name__
            if feat.dim() == 4 and feat.size(1) != self.neck.in_channels:
                raise ValueError(
                    f'neck.in_channels={self.neck.in_channels} does not match the backbone '
                    f'{name}, which gives {feat.size(1)} channels '
                    f'(feature map {tuple(feat.shape)} at global_size {self.global_size}); '
                    f'set model.neck.in_channels={feat.size(1)} and '
                    f'model.head.in_channels={feat.size(1)}')
            self.neck.check_input(feat)
            local = pool_feature(self.crop_backbone(
                torch.zeros(1, 3, *self.sampler.crop_size)))
            expected = getattr(self.head, 'local_channels', local.size(1))
            if local.size(1) != expected:
                raise ValueError(
                    f'head.local_channels={expected} does not match the local backbone '
                    f'{type(self.crop_backbone).__name__}, which gives {local.size(1)} '
                    f'channels; set model.head.local_channels={local.size(1)}')
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)

    # --------------------------------------------------------------- forward
    def global_view(self, inputs: torch.Tensor) -> torch.Tensor:
        """Downsampled global view (B, 3, h0, w0) of the input (B, 3, H, W)."""
        if tuple(inputs.shape[-2:]) == self.global_size:
            return inputs
        if self.global_resize == 'area':
            return area_resize(inputs, self.global_size)
        return F.interpolate(inputs, size=self.global_size, mode='bilinear',
                             align_corners=False, antialias=True)

    def forward_parts(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Run the whole flow and keep every intermediate.

        Returns:
            dict: ``attention`` (B, h, w), ``global_feat`` (B, C), ``boxes`` (B, N, 4),
            ``scores`` (B, N), ``weights`` (B, N), ``crops`` (B*N, 3, s, s),
            ``local_feats`` (B, N, C').
        """
        B = inputs.size(0)
        with record_function('gattn.glance'):
            attention, global_feat = self.neck(self.backbone(self.global_view(inputs)))
        with record_function('gattn.sampler'):
            parts = self.sampler(attention, tuple(inputs.shape[-2:]))
            crops = self.sampler.crop(inputs, parts['boxes'])  # (B*N*K, 3, s, s)
        N = parts['boxes'].size(1)
        K = getattr(self.sampler, 'num_views', 1)  # instance-level test views
        with record_function('gattn.local'):
            feats = pool_feature(self.crop_backbone(crops))  # (B*N*K, C')
            local_feats = feats.view(B, N, K, -1).mean(dim=2)  # (B, N, C')
        if K > 1:  # keep the crops of the boxes themselves (view 0)
            crops = crops.view(B, N, K, *crops.shape[1:])[:, :, 0].flatten(0, 1)
        parts.update(attention=attention, global_feat=global_feat, crops=crops,
                     local_feats=local_feats)
        return parts

    def head_inputs(self, parts: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        return parts['global_feat'], parts['local_feats'], parts['weights']

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'pre_logits'):
        """Features of a stage, like ``ImageClassifier.extract_feat``.

        Args:
            inputs (Tensor): (B, 3, H, W) full-resolution batch.
            stage (str): ``backbone`` (the backbone's outputs on the global view),
                ``neck`` (attention (B, h, w), global feature (B, C)), ``sampler``
                (the dict of :meth:`forward_parts`) or ``pre_logits`` (default: the
                fused feature of the head, so both the glance and the instance pass
                run, e.g. in mmpretrain's ``get_flops``).
        """
        if stage == 'backbone':
            return self.backbone(self.global_view(inputs))
        if stage == 'neck':
            return self.neck(self.backbone(self.global_view(inputs)))
        parts = self.forward_parts(inputs)
        if stage == 'sampler':
            return parts
        if stage == 'pre_logits':
            return self.head.pre_logits(self.head_inputs(parts))
        raise ValueError(f"stage must be 'backbone', 'neck', 'sampler' or 'pre_logits', "
                         f'got {stage!r}')

    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None, mode: str = 'tensor'):
        """``tensor``: the logits predictions come from (B, K); ``loss``: dict of
        losses; ``predict``: DataSamples."""
        if mode == 'tensor':
            feats = self.head_inputs(self.forward_parts(inputs))
            predict_logits = getattr(self.head, 'predict_logits', self.head)
            return predict_logits(feats)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        """Head losses plus the optional attention entropy term."""
        parts = self.forward_parts(inputs)
        losses = self.head.loss(self.head_inputs(parts), data_samples)
        if self.entropy_weight:
            attn = parts['attention'].flatten(1)
            entropy = -(attn * attn.clamp_min(1e-12).log()).sum(1).mean()
            losses['loss_entropy'] = -self.entropy_weight * entropy
        if self.distill_weight:
            losses['loss_distill'] = self.distill_weight * self.distill_loss(parts)
        if self.prior_weight:
            losses['loss_prior'] = self.prior_weight * self.prior_loss(inputs, parts)
        return losses

    @staticmethod
    def _zscore(x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-6)

    def distill_scores(self, parts: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-instance scores (B, N) the attention is taught to follow (no gradient).

        ``evidence``: log-odds of the positive classes against class 0 from the local
        classifier (what the reader found). ``contrast``: the pixel standard deviation
        of each full-resolution crop, z-scored within the image: a label-free prior
        that structures stand out from a flatter background, available from the
        first step, before the reader knows any class. ``both``: the sum of both
        z-scores (contrast finds the structures, evidence ranks them).
        """
        scores = []
        if self.distill_target in ('evidence', 'both'):
            inst = self.head.instance_logits(self.head_inputs(parts)).detach()  # (B, N, K)
            evidence = inst[..., 1:].logsumexp(dim=-1) - inst[..., 0]  # (B, N)
            scores.append(self._zscore(evidence) if self.distill_target == 'both' else
                          evidence)
        if self.distill_target in ('contrast', 'both'):
            B, N = parts['scores'].shape
            crops = parts['crops'].detach().view(B, N, -1)  # (B, N, 3*s*s)
            scores.append(self._zscore(crops.std(dim=-1)))
        return sum(scores)

    def distill_loss(self, parts: Dict[str, torch.Tensor]) -> torch.Tensor:
        """KL(teacher || attention) over the N sampled instances of each image."""
        target = (self.distill_scores(parts) / self.distill_temperature).softmax(dim=1)
        log_q = parts['scores'].clamp_min(1e-12).log().log_softmax(dim=1)
        return F.kl_div(log_q, target, reduction='batchmean')

    def contrast_prior(self, inputs: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Z-scored pixel standard deviation (B, h*w) of the full-resolution input
        (B, 3, H, W) inside each attention cell (no gradient).

        Large cells are read on a regular subsample, every s-th pixel with
        s = cell side // ``PRIOR_SAMPLES`` (so 1 to 2 x ``PRIOR_SAMPLES`` pixels per
        cell side): a standard deviation from a thousand pixels is as good a contrast
        cue, at a cost that stays flat as the input grows.
        """
        step = max(1, min(inputs.size(-2) // grid[0], inputs.size(-1) // grid[1])
                   // self.PRIOR_SAMPLES)
        gray = inputs.detach()[..., ::step, ::step].mean(dim=1, keepdim=True)
        mean = F.adaptive_avg_pool2d(gray, grid)
        sq = F.adaptive_avg_pool2d(gray * gray, grid)
        std = (sq - mean * mean).clamp_min(0).sqrt().flatten(1)
        return self._zscore(std)

    def prior_loss(self, inputs: torch.Tensor, parts: Dict[str, torch.Tensor]) -> torch.Tensor:
        """KL(contrast prior || attention) over all cells of each image."""
        attention = parts['attention']  # (B, h, w)
        prior = self.contrast_prior(inputs, tuple(attention.shape[-2:]))
        target = (prior / self.distill_temperature).softmax(dim=1)
        log_q = attention.flatten(1).clamp_min(1e-12).log()
        return F.kl_div(log_q, target, reduction='batchmean')

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        """Predictions with the attention map, the instance boxes and their scores.

        Every DataSample gets ``pred_score``, ``pred_label``, ``attention`` (h, w),
        ``boxes`` (N, 4) xyxy in input-tensor pixels, ``instance_scores`` (N,) and,
        when its metainfo has ``scale_factor`` (w, h) from a resize,
        ``ori_boxes`` (N, 4) in the original image's pixels.
        """
        parts = self.forward_parts(inputs)
        samples = self.head.predict(self.head_inputs(parts), data_samples)
        for i, sample in enumerate(samples):
            boxes = parts['boxes'][i].detach()
            sample.set_field(parts['attention'][i].detach(), 'attention', field_type='data')
            sample.set_field(boxes, 'boxes', field_type='data')
            sample.set_field(parts['scores'][i].detach(), 'instance_scores',
                             field_type='data')
            scale = sample.get('scale_factor')
            if scale is not None:
                sx, sy = float(scale[0]), float(scale[1])
                sample.set_field(boxes / boxes.new_tensor([sx, sy, sx, sy]), 'ori_boxes',
                                 field_type='data')
        return samples
