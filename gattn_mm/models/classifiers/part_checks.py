"""Build-time checks of the rules between the parts of a gattn model: every
combination that would fail (or silently do the wrong thing) later fails when the
model is built, with the config keys named."""
import inspect
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.models.heads import MultiLabelClsHead

from ..heads import FusionHead, GattnHead, MultiLabelFusionHead
from ..losses import BaseAttentionLoss
from ..utils import int_pair, pool_feature

TRAIN_CFG_KEYS = ('augments', 'probs')  # mmpretrain's RandomBatchAugment
MULTI_LABEL = (MultiLabelClsHead, MultiLabelFusionHead)
HEADS = ('head', 'instance_head', 'global_head')  # the config's head slots


def batch_augments_cfg(train_cfg: Optional[dict]) -> Optional[dict]:
    """``model.train_cfg`` as mmpretrain reads it (batch augments), unknown keys refused."""
    if not train_cfg:
        return None
    unknown = sorted(set(train_cfg) - set(TRAIN_CFG_KEYS))
    if unknown:
        raise ValueError(f'model.train_cfg has unknown keys {unknown}: it holds batch '
                         f'augments ({", ".join(TRAIN_CFG_KEYS)}), as in mmpretrain. '
                         f'Attention losses go in model.attention_losses, instance '
                         f'selection in model.sampler')
    return dict(train_cfg)


def preprocessor_cfg(data_preprocessor: Optional[dict], train_cfg: Optional[dict],
                     heads: dict) -> dict:
    """``model.data_preprocessor`` completed from the other parts: the type
    (``ClsDataPreprocessor``), the batch augments of ``train_cfg`` and the heads'
    number of classes (set once, in the heads; a different count is refused)."""
    cfg = dict(data_preprocessor or {})
    cfg.setdefault('type', 'ClsDataPreprocessor')
    check_normalisation(cfg.get('mean'), cfg.get('std'))
    cfg.setdefault('batch_augments', batch_augments_cfg(train_cfg))
    classes = {name: head['num_classes'] for name, head in heads.items()
               if head and head.get('num_classes') is not None}
    if cfg.get('num_classes') is None:
        if classes:  # heads that disagree are refused by check_heads
            cfg['num_classes'] = next(iter(classes.values()))
        return cfg
    for name, count in classes.items():
        if count != cfg['num_classes']:
            raise ValueError(f'model.data_preprocessor.num_classes={cfg["num_classes"]} '
                             f'but model.{name}.num_classes={count}; set the same number '
                             f'(or leave the preprocessor\'s out: it follows the heads)')
    return cfg


def check_normalisation(mean, std) -> None:
    """``mean`` and ``std`` of the data preprocessor: both or neither, one value per
    channel (1 or 3), every std > 0 (0 would divide by zero: NaN predictions)."""
    if mean is None and std is None:
        return
    try:
        mean, std = [float(v) for v in mean], [float(v) for v in std]
    except (TypeError, ValueError):
        raise ValueError(f'model.data_preprocessor mean and std must be lists of numbers, '
                         f'got mean={mean!r}, std={std!r}') from None
    if len(mean) not in (1, 3) or len(std) != len(mean) or min(std) <= 0:
        raise ValueError(f'model.data_preprocessor: expected mean and std of 1 or 3 values '
                         f'each (one per channel), every std > 0; got mean={mean}, std={std}')


@torch.no_grad()
def probe_width(module: nn.Module, size: Tuple[int, int]) -> int:
    """Channels of a network's pooled output (:func:`pool_feature`) on zeros of
    ``size`` (h, w), run in eval mode (no statistics change) and no random draw."""
    mode = module.training
    module.eval()  # note: mmpretrain's ResNet.train() returns None, do not chain
    try:
        return pool_feature(module(torch.zeros(1, 3, *size))).size(1)
    finally:
        module.train(mode)


def _accepts(cfg: Optional[dict], key: str) -> bool:
    """``cfg`` builds a class whose constructor takes ``key`` and does not give it:
    in its own arguments, or in a base class's that it passes ``**kwargs`` on to
    (e.g. ``MultiLabelFusionHead`` -> ``FusionHead.instance_channels``)."""
    if not cfg or cfg.get(key) is not None:
        return False
    cls = MODELS.get(cfg['type']) if isinstance(cfg.get('type'), str) else cfg.get('type')
    for klass in (cls.__mro__ if isinstance(cls, type) else ()):
        params = inspect.signature(klass.__init__).parameters
        if key in params:
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return False
    return False


def complete_widths(backbone: nn.Module, global_size: Tuple[int, int], reader: Optional[dict],
                    sampler: dict, cfgs: dict) -> dict:
    """The configs of the neck and heads (``cfgs``: ``neck``, ``head``,
    ``instance_head``, ``global_head``) with the channels they leave out taken from
    the built modules: C from the backbone on the glance (``neck.in_channels``,
    ``head.in_channels``, ``global_head.in_channels``), C' from the reader on a crop
    (``instance_head.in_channels``, ``head.instance_channels``). A config that gives
    every width probes nothing; a given width is checked later (:func:`check_channels`).
    A separate reader is built once to be measured, its random draws undone, so the
    model's initialisation is the same as with the widths written out."""
    wanted = {(name, key): width for name, key, width in (
        ('neck', 'in_channels', 'C'), ('head', 'in_channels', 'C'),
        ('global_head', 'in_channels', 'C'), ('head', 'instance_channels', "C'"),
        ('instance_head', 'in_channels', "C'")) if _accepts(cfgs.get(name), key)}
    if not wanted:
        return cfgs
    widths = {'C': probe_width(backbone, global_size)}
    if "C'" in wanted.values():
        crop = int_pair(sampler.get('crop_size', 64), 'sampler.crop_size')
        if reader:
            with torch.random.fork_rng(devices=[]):
                widths["C'"] = probe_width(MODELS.build(reader), crop)
        else:
            widths["C'"] = probe_width(backbone, crop)
    cfgs = {name: dict(cfg) if cfg else cfg for name, cfg in cfgs.items()}
    for (name, key), width in wanted.items():
        cfgs[name][key] = widths[width]
    return cfgs


def check_parts(model, train_cfg: Optional[dict]) -> None:
    """Check every cross-part rule of a built ``GatedAttentionClassifier``."""
    check_heads(model)
    check_channels(model)
    check_instances(model)
    check_losses(model, train_cfg)


def check_heads(model) -> None:
    names = HEADS
    chosen = (model.predict_from,) if isinstance(model.predict_from, str) \
        else model.predict_from
    if not chosen or any(n not in names for n in chosen) or len(set(chosen)) < len(chosen):
        raise ValueError(f'model.predict_from must be one of {names}, or several of them '
                         f'(each once), got {model.predict_from!r}')
    for name in chosen:
        if getattr(model, name) is None:
            raise ValueError(f'model.predict_from={model.predict_from!r} but the config '
                             f'has no model.{name}')
        if len(chosen) > 1 and isinstance(getattr(model, name), MULTI_LABEL):
            raise ValueError(f'model.predict_from={model.predict_from!r}: model.{name} is '
                             f'multi-label; the mean of class probabilities is for '
                             f'single-label heads, predict from it alone')
    classes = {f'model.{n}.num_classes': getattr(model, n).num_classes for n in names
               if getattr(getattr(model, n), 'num_classes', None) is not None}
    if len(set(classes.values())) > 1:
        raise ValueError(f'the heads disagree on the number of classes: {classes}; set the '
                         f'same num_classes in every head')


def _mismatch(head, attr: str, key: str, actual: int, source: str) -> Optional[str]:
    expected = getattr(head, attr, None) if head is not None else None
    if expected is not None and expected != actual:
        return f'{key}={expected} does not match {source}, which gives {actual} ' \
               f'channels; set {key}={actual}'
    return None


@torch.no_grad()
def check_channels(model) -> None:
    """Dry-run the backbone and the reader on zeros so a channel mismatch fails now."""
    modules = [model.backbone, model.reader_module]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()  # note: mmpretrain's ResNet.train() returns None, do not chain
    try:
        outs = model.backbone(torch.zeros(1, 3, *model.global_size))
        feat = outs[-1] if isinstance(outs, (tuple, list)) else outs
        name = type(model.backbone).__name__
        if not isinstance(feat, torch.Tensor):
            raise ValueError(
                f'the backbone {name} gives {len(feat)} tensors per output '
                f'({[tuple(getattr(f, "shape", ())) for f in feat]}); the neck needs its '
                f'last output to be one feature map (B, C, h, w)')
        if feat.dim() == 4 and feat.size(1) != model.neck.in_channels:
            raise ValueError(
                f'model.neck.in_channels={model.neck.in_channels} does not match the '
                f'backbone {name}, which gives {feat.size(1)} channels (feature map '
                f'{tuple(feat.shape)} at global_size {model.global_size}); set '
                f'model.neck.in_channels={feat.size(1)} (and the heads\' in_channels)')
        model.neck.check_input(feat)
        C = feat.size(1)
        reader = f'the reader {type(model.reader).__name__}' if model.reader is not None \
            else f'the backbone {name} (the reader of the crops too)'
        C_inst = pool_feature(model.reader_module(
            torch.zeros(1, 3, *model.sampler.crop_size))).size(1)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    problems = [
        _mismatch(model.head, 'in_channels', 'model.head.in_channels', C, f'the backbone {name}'),
        _mismatch(model.global_head, 'in_channels', 'model.global_head.in_channels', C,
                  f'the backbone {name}'),
        _mismatch(model.head, 'instance_channels', 'model.head.instance_channels', C_inst,
                  reader),
        _mismatch(model.instance_head, 'in_channels', 'model.instance_head.in_channels',
                  C_inst, reader)]
    problems = [p for p in problems if p]
    if problems:  # all at once: one build to learn every key to set
        raise ValueError('; '.join(problems))


def check_instances(model) -> None:
    """A fusion built for a fixed N gets that N in training and at test time."""
    fusion = model.head.fusion if isinstance(model.head, FusionHead) else None
    fixed = fusion.num_instances if fusion is not None else None
    if fixed is None:
        return
    for key, n in (('model.sampler.num_instances', model.sampler.train_num_instances),
                   ('model.sampler.test_cfg.num_instances', model.sampler.test_num_instances)):
        if n != fixed:
            raise ValueError(f'model.head.fusion.num_instances={fixed} ({type(fusion).__name__}'
                             f' needs a fixed N) but {key}={n}; make them equal or use a '
                             f'fusion for any N (AttentionFusion, MeanFusion)')


def check_losses(model, train_cfg: Optional[dict]) -> None:
    names = ['loss', 'loss_global', 'loss_local', 'loss_instance']
    for i, loss in enumerate(model.attention_losses):
        key = f'model.attention_losses[{i}] ({type(loss).__name__})'
        if not isinstance(loss, BaseAttentionLoss):
            raise TypeError(f'{key} is not an attention loss: subclass BaseAttentionLoss '
                            f'(gattn_mm/models/losses)')
        if loss.needs_evidence and model.instance_head is None:
            raise ValueError(f'{key} learns from the instance evidence: it needs '
                             f'model.instance_head')
        if loss.loss_name in names:
            raise ValueError(f'{key}.loss_name={loss.loss_name!r} is already used; give '
                             f'it another loss_name')
        names.append(loss.loss_name)
    check_reader_learns(model)
    for name in HEADS:
        head = getattr(model, name)
        if train_cfg and isinstance(head, GattnHead) and head.labels_instances:
            raise ValueError(f'model.train_cfg batch augments (Mixup/CutMix) mix the '
                             f'labels of two images, which model.{name} (its mil_loss) '
                             f'cannot assign to instances: remove one of them')


def check_reader_learns(model) -> None:
    """A separate reader learns only from a head whose loss reaches it
    (``GattnHead.trains_reader``): an instance head, or a fused head without
    ``detach_instances``."""
    if model.reader is None:
        return
    if not any(isinstance(getattr(model, n), GattnHead) and getattr(model, n).trains_reader
               for n in HEADS):
        raise ValueError('model.reader would never learn: no model.instance_head, and '
                         'model.head is missing or cuts the reader\'s gradient '
                         '(detach_instances=True); add an instance head or set '
                         'model.head.detach_instances=False')
