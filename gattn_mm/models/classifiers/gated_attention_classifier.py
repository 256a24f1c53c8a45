from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch.profiler import record_function

from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..heads.gattn_head import GattnHead
from ..utils import (GattnState, ImageBatch, as_batch, int_pair, pool_feature,
                     set_instance_fields)
from .checkpoint_keys import check_checkpoint_keys
from .part_checks import HEADS, check_parts, complete_widths, preprocessor_cfg

Inputs = Union[torch.Tensor, ImageBatch]


def head_input(head: nn.Module, state: GattnState):
    """What a head reads: a ``GattnHead`` the state, any other mmpretrain head the
    global feature ``(global_feat,)``."""
    return state if isinstance(head, GattnHead) else (state.global_feat,)


def class_predictions(logits: torch.Tensor,
                      data_samples: Optional[List[DataSample]]) -> List[DataSample]:
    """Single-label predictions of logits (B, K), as mmpretrain's ``ClsHead``
    makes them: the softmax scores and their argmax."""
    scores = logits.softmax(dim=1)
    labels = scores.argmax(dim=1, keepdim=True).detach()
    samples = data_samples or [None] * len(scores)
    return [(s if s is not None else DataSample()).set_pred_score(score).set_pred_label(
        label) for s, score, label in zip(samples, scores, labels)]


@MODELS.register_module()
class GatedAttentionClassifier(BaseClassifier):
    """Glance, attend, zoom: the classifier of Fan et al., MICCAI 2020.

    Wiring only. The full-resolution input (B, 3, H, W) is averaged down to the
    glance (B, 3, h0, w0); the ``backbone``'s last map (B, C, h, w) goes to the
    gated attention ``neck`` (attention (B, h, w), global feature (B, C)); the
    ``sampler`` and its selector turn the attention into N boxes and crop them from
    the full-resolution input; the ``reader`` (the backbone itself when None) reads
    the crops, (B, N, C'). The heads classify from the resulting
    :class:`GattnState`: ``head`` (global fused with instances, e.g.
    ``FusionHead``), ``instance_head`` (per-instance logits pooled, e.g.
    ``InstanceHead``), ``global_head`` (any mmpretrain head on the global feature).
    Every head present is trained; ``predict_from`` names the one that predicts, or
    several whose class probabilities are averaged (e.g. the instances and the fused
    head: both take part in the decision).
    ``attention_losses`` (e.g. ``ContrastPriorLoss``) are added to the loss.

    Channels a config leaves out (``neck.in_channels``, the heads' ``in_channels`` and
    ``instance_channels``) are measured on the built backbone and reader
    (``complete_widths``); channels given are checked against them.

    Args:
        backbone (dict): any mmpretrain backbone that returns a feature map.
        neck (dict): ``GatedAttentionNeck`` config.
        sampler (dict): ``InstanceSampler`` config.
        head (dict, optional): fusion head.
        reader (dict, optional): backbone of the crops; shares ``backbone`` when None.
        instance_head (dict, optional): instance head.
        global_head (dict, optional): head on the global feature, e.g.
            ``LinearClsHead`` (an auxiliary loss, or a glance-only prediction).
        attention_losses (list[dict]): losses on the attention.
        predict_from (str | Sequence[str]): ``head``, ``instance_head`` or
            ``global_head``, or several of them (single-label heads): the image's
            class probabilities are the mean of theirs.
        global_size (int | tuple): (h0, w0) of the glance.
        train_cfg (dict, optional): as in mmpretrain: batch augments
            (``augments``, ``probs``) for the data preprocessor.
        data_preprocessor (dict, optional): defaults to ``ClsDataPreprocessor``; its
            ``num_classes`` (used by batch augments) defaults to the heads'.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 sampler: dict,
                 head: Optional[dict] = None,
                 reader: Optional[dict] = None,
                 instance_head: Optional[dict] = None,
                 global_head: Optional[dict] = None,
                 attention_losses: Sequence[dict] = (),
                 predict_from: Union[str, Sequence[str]] = 'head',
                 global_size: Union[int, Sequence[int]] = 224,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        data_preprocessor = preprocessor_cfg(data_preprocessor, train_cfg, dict(
            head=head, instance_head=instance_head, global_head=global_head))
        super().__init__(init_cfg=init_cfg, data_preprocessor=MODELS.build(data_preprocessor))
        self.global_size = int_pair(global_size, 'model.global_size')
        # build order = random-init order: kept as in 0.1 so trainings reproduce
        self.backbone = MODELS.build(backbone)
        cfgs = complete_widths(self.backbone, self.global_size, reader, sampler, dict(
            neck=neck, head=head, instance_head=instance_head, global_head=global_head))
        self.neck = MODELS.build(cfgs['neck'])
        self.sampler = MODELS.build(sampler)
        for name in HEADS:
            setattr(self, name, MODELS.build(cfgs[name]) if cfgs[name] else None)
        self.reader = MODELS.build(reader) if reader else None
        self.attention_losses = nn.ModuleList(MODELS.build(c) for c in attention_losses)
        self.predict_from = predict_from if isinstance(predict_from, str) \
            else tuple(predict_from)
        check_parts(self, train_cfg)
        self._register_load_state_dict_pre_hook(check_checkpoint_keys, with_module=True)

    @property
    def reader_module(self) -> nn.Module:
        """The network that reads the crops."""
        return self.reader if self.reader is not None else self.backbone

    @property
    def heads(self) -> List[nn.Module]:
        """The heads present, in the order of :data:`HEADS`."""
        return [h for h in (getattr(self, name) for name in HEADS) if h is not None]

    def glance(self, inputs: Inputs) -> torch.Tensor:
        """The downsampled global view (B, 3, h0, w0) of the input (B, 3, H, W), or of
        images at their own sizes (each fitted into (h0, w0), padded)."""
        return as_batch(inputs).glance(self.global_size)

    def attend(self, inputs: Inputs):
        """Attention (B, h, w) over the cells and global feature (B, C) of the
        input, from the glance."""
        return self.neck(self.backbone(self.glance(inputs)))

    def forward_state(self, inputs: Inputs,
                      data_samples: Optional[List[DataSample]] = None) -> GattnState:
        """Run the glance, the sampler, the reader and the instance head's per-instance
        logits; every intermediate is kept in the returned :class:`GattnState`.
        ``inputs``: an :class:`ImageBatch` (a ``NativeBatch`` of images at their own
        sizes: boxes in native pixels) or a (B, 3, H, W) tensor, whose padding the
        metainfo of ``data_samples`` gives (:func:`as_batch`): padding cells are
        never chosen, in training as at test time."""
        batch = as_batch(inputs, data_samples)
        with record_function('gattn.glance'):
            attention, global_feat = self.attend(batch)
        with record_function('gattn.sampler'):
            selection, boxes = self.sampler(attention, batch.canvas(self.global_size),
                                            batch.extents, batch)
            crops = self.sampler.crop(batch, boxes)  # (B*N*V, 3, s_h, s_w)
        N, V = boxes.size(1), self.sampler.num_views
        with record_function('gattn.local'):
            feats = pool_feature(self.reader_module(crops))  # (B*N*V, C')
            # (B, N, C'); the batch B left to the shape (-1): an ONNX export keeps it
            instance_feats = feats.unflatten(0, (-1, N, V)).mean(dim=2)
        if V > 1:  # keep the crops of the boxes themselves (view 0)
            crops = crops.unflatten(0, (-1, N, V))[:, :, 0].flatten(0, 1)
        state = GattnState(inputs=batch, attention=attention, global_feat=global_feat,
                           boxes=boxes, scores=selection.scores, weights=selection.weights,
                           crops=crops, instance_feats=instance_feats,
                           data_samples=data_samples)
        if self.instance_head is not None:
            state.instance_logits = self.instance_head.instance_logits(state)  # (B, N, K)
            state.evidence = self.instance_head.instance_evidence(state)
        return state

    def head_logits(self, name: str, state: GattnState) -> torch.Tensor:
        """The image logits (B, K) of the head ``name``."""
        head = getattr(self, name)
        return head(head_input(head, state))

    def predict_logits(self, state: GattnState) -> torch.Tensor:
        """The image logits (B, K) of the ``predict_from`` head; of several heads, the
        log of the mean of their class probabilities (so that their softmax is it)."""
        if isinstance(self.predict_from, str):
            return self.head_logits(self.predict_from, state)
        probs = [self.head_logits(n, state).float().softmax(dim=-1)
                 for n in self.predict_from]
        return torch.stack(probs).mean(dim=0).log()

    def extract_feat(self, inputs: Inputs, stage: str = 'pre_logits'):
        """Features of a stage, like ``ImageClassifier.extract_feat``: ``backbone``
        (the backbone's outputs on the glance), ``neck`` (attention (B, h, w), global
        feature (B, C)), ``state`` (the :class:`GattnState`) or ``pre_logits``
        (default; both passes run, e.g. in mmpretrain's ``get_flops``: the fused
        feature of ``head``, else the instance features (B, N, C'))."""
        if stage in ('backbone', 'neck'):
            outs = self.backbone(self.glance(inputs))
            return outs if stage == 'backbone' else self.neck(outs)
        if stage not in ('state', 'pre_logits'):
            raise ValueError(f"stage must be 'backbone', 'neck', 'state' or 'pre_logits', "
                             f'got {stage!r}')
        state = self.forward_state(inputs)
        if stage == 'state':
            return state
        return self.head.pre_logits(state) if self.head is not None else state.instance_feats

    def forward(self, inputs: Inputs,
                data_samples: Optional[List[DataSample]] = None, mode: str = 'tensor'):
        """``tensor``: the logits (B, K) of the predicting head; ``loss``: dict of
        losses; ``predict``: DataSamples."""
        if mode == 'tensor':
            return self.predict_logits(self.forward_state(inputs, data_samples))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: Inputs, data_samples: List[DataSample]) -> dict:
        """The losses of every head (a head on the global feature logs them as
        ``loss_global``) and of the attention losses."""
        state = self.forward_state(inputs, data_samples)
        losses = {}
        for head in self.heads:
            out = head.loss(head_input(head, state), data_samples)
            if not isinstance(head, GattnHead):
                out = {k.replace('loss', 'loss_global', 1): v for k, v in out.items()}
            losses.update(out)
        for attention_loss in self.attention_losses:
            losses[attention_loss.loss_name] = attention_loss(state)
        return losses

    def predict(self, inputs: Inputs,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        """Predictions of the ``predict_from`` head(s), with the attention, the boxes
        and what each instance says (:func:`set_instance_fields`) and ``ori_boxes`` in
        the original image's (or a slide's level-0) pixels
        (``ImageBatch.set_original_boxes``)."""
        state = self.forward_state(inputs, data_samples)
        if isinstance(self.predict_from, str):
            head = getattr(self, self.predict_from)
            samples = head.predict(head_input(head, state), data_samples)
        else:  # several single-label heads: the mean of their probabilities
            samples = class_predictions(self.predict_logits(state), data_samples)
        fusion_weights = self.head.instance_weights(state) \
            if isinstance(self.head, GattnHead) else None
        set_instance_fields(samples, state, self.instance_head, fusion_weights)
        state.inputs.set_original_boxes(samples, state.boxes, self.global_size)
        return samples
