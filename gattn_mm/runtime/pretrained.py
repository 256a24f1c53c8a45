"""``init_cfg=dict(type='Pretrained', ...)`` that says what it loaded, and refuses a
checkpoint that does not fit, while the runtime is active.

mmengine's ``PretrainedInit`` loads non-strictly and only logs key lists: ResNet-50
ImageNet weights given to a ResNet-18 backbone, or a ``prefix`` of another model, train
from (mostly) random weights with exit 0. Partial loading is what ``Pretrained`` is
for, so here it is checked by one rule, and every load logs one line with its counts::

    init_cfg Pretrained r18.pth (prefix 'backbone.') into ResNet: loaded 62 of 62
    tensors; missing 0, unexpected 0, shape mismatches 0

**Rule.** The load is refused (:class:`PretrainedMismatchError`, naming the checkpoint,
the prefix and the module) when no tensor of the module loads, or when any tensor has
another shape in the checkpoint than in the module: a name that fits with another
shape means another architecture (another depth or width), not a part of this one.
Missing tensors (kept at their initial values) and unexpected ones (e.g. a head the
module does not have) are allowed and counted. Shapes are compared as the module loads
them, after its own ``load_state_dict`` pre-hooks (e.g. a ViT resizing its position
embedding). BatchNorm's ``num_batches_tracked`` step counters are not counted, as
mmengine does not report them. To start from part of a whole classifier, give the
backbone's ``init_cfg`` ``prefix='backbone'``.

**Where.** Inside :func:`checked_pretrained`, which
:func:`gattn_mm.runtime.safe_checkpoints` enters for the tools and ``GattnInferencer``;
the checkpoint is read there by the safe loaders (:mod:`gattn_mm.runtime.loaders`).
Outside it ``Pretrained`` is mmengine's own (non-strict, logging key lists).

**Why not a new init type.** mmengine and mmpretrain recognise pretrained loading by
the name ``'Pretrained'`` or the class ``PretrainedInit`` itself: ``BaseModule``
applies it after every other initialiser and after the children's, and backbones
(``ResNet``'s ``zero_init_residual``, ViT's position embedding, ...) skip their own
re-initialisation only for it. A new name (e.g. ``'SafePretrained'``) would load the
weights and let them be overwritten. So the configs keep ``type='Pretrained'`` and the
context gives ``PretrainedInit`` the checked ``__call__`` while it is active (both
``type='Pretrained'`` and ``type=PretrainedInit`` are checked), restoring mmengine's on
exit; nothing is changed at import.
"""
import logging
import re
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.model.weight_init import PretrainedInit, update_init_info

from gattn_mm.models.classifiers.checkpoint_keys import CheckpointMismatchError
from .loaders import load_checkpoint_safely

SHOWN = 3  # keys named per kind of mismatch
SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape (.*?) '
                           r'from checkpoint, the shape in current model is (.*?)\.$')


class PretrainedMismatchError(CheckpointMismatchError):
    """An ``init_cfg`` ``Pretrained`` checkpoint does not fit the module it initialises;
    ``checkpoint`` is the file (or URL) it names."""

    def __init__(self, message: str, checkpoint: str):
        super().__init__(message)
        self.checkpoint = checkpoint


def _first(keys: List[str]) -> str:
    more = ', ...' if len(keys) > SHOWN else ''
    return f' (first: {", ".join(keys[:SHOWN])}{more})' if keys else ''


def _shape(text: str) -> Tuple[int, ...]:  # 'torch.Size([8, 64, 3, 3])' -> (8, 64, 3, 3)
    return tuple(int(n) for n in re.findall(r'\d+', text))


def load_counted(module: nn.Module, state_dict: Dict) -> Tuple[List[str], List[str],
                                                               List[str], List[str]]:
    """Load ``state_dict`` into ``module`` non-strictly, as mmengine's
    ``load_state_dict`` does (model wrappers unwrapped, per-module pre- and post-hooks),
    and return its ``(missing, unexpected, mismatched, other_errors)``; ``mismatched``
    reads ``'key (checkpoint shape) vs (module shape)'``."""
    missing, unexpected, errors = [], [], []
    metadata = getattr(state_dict, '_metadata', None)

    def load(mod: nn.Module, local: Dict, prefix: str = '') -> None:
        if is_model_wrapper(mod) or isinstance(mod, BaseTTAModel):
            mod = mod.module
        local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
        mod._load_from_state_dict(local, prefix, local_metadata, True, missing,
                                  unexpected, errors)
        for name, child in mod._modules.items():
            if child is not None:
                child_prefix = f'{prefix}{name}.'
                load(child, {k: v for k, v in local.items() if k.startswith(child_prefix)},
                     child_prefix)
        incompatible = nn.modules.module._IncompatibleKeys(missing, unexpected)
        for hook in getattr(mod, '_load_state_dict_post_hooks', {}).values():
            hook(mod, incompatible)

    load(module, dict(state_dict))
    mismatched, other = [], []
    for error in errors:
        match = SIZE_MISMATCH.search(error.strip())
        if match:
            key, given, expected = match.groups()
            mismatched.append(f'{key} {_shape(given)} vs {_shape(expected)}')
        else:
            other.append(error.strip().splitlines()[0])
    counted = [[k for k in keys if not k.endswith('num_batches_tracked')]
               for keys in (missing, unexpected)]
    return counted[0], counted[1], mismatched, other


def _state_dict_of(checkpoint, source: str) -> Dict:
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else None
    if not isinstance(state, dict):
        raise PretrainedMismatchError(
            f'init_cfg Pretrained {source}: it holds no state_dict (a '
            f'{type(checkpoint).__name__})', source)
    return state


def _top_names(keys) -> str:
    names = sorted({k.split('.', 1)[0] + '.' for k in keys})
    return ', '.join(repr(n) for n in names[:8]) + (', ...' if len(names) > 8 else '')


def checked_pretrained_call(self: PretrainedInit, module: nn.Module) -> None:
    """``PretrainedInit.__call__``: load ``self.checkpoint`` (its ``self.prefix`` part)
    into ``module``, log the counts, refuse by the rule of this module's docstring."""
    source = str(self.checkpoint)
    given = _state_dict_of(load_checkpoint_safely(self.checkpoint, self.map_location), source)
    prefix: Optional[str] = None
    if self.prefix is None:  # as load_checkpoint's revise_keys: a DDP 'module.' dropped
        state = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in given.items())
        if hasattr(given, '_metadata'):
            state._metadata = given._metadata
    else:
        prefix = self.prefix if self.prefix.endswith('.') else self.prefix + '.'
        state = OrderedDict((k[len(prefix):], v) for k, v in given.items()
                            if k.startswith(prefix))
    name = type(module).__name__
    what = f'init_cfg Pretrained {source}' + (f' (prefix {prefix!r})' if prefix else '')
    total = [k for k in module.state_dict() if not k.endswith('num_batches_tracked')]
    if prefix and not state:
        raise PretrainedMismatchError(
            f'refusing {what}: no key of the checkpoint starts with {prefix!r}, so '
            f'nothing would load into {name}; its keys start with {_top_names(given)}',
            source)
    missing, unexpected, mismatched, other = load_counted(module, state)
    loaded = len(total) - len(missing) - len(mismatched)
    counts = (f'loaded {loaded} of {len(total)} tensors; missing {len(missing)}'
              f'{_first(missing)}, unexpected {len(unexpected)}{_first(unexpected)}, '
              f'shape mismatches {len(mismatched)}{_first(mismatched)}')
    if other:
        counts += f'; errors {len(other)}{_first(other)}'
    if mismatched or other or (total and loaded == 0):
        reason = 'none of its tensors fits' if loaded == 0 else \
            f'{len(mismatched)} tensors have another shape in the checkpoint than in' \
            if mismatched else 'some tensors cannot be copied into'
        hint = (f' (the checkpoint\'s keys start with {_top_names(given)}: give the '
                f'prefix of the part to load, e.g. prefix=\'backbone\')'
                if loaded == 0 and not mismatched else
                ', a checkpoint of another architecture (depth, width or channels)')
        raise PretrainedMismatchError(
            f'refusing {what}: {reason} {name}{hint}; {counts}. Give the checkpoint of '
            f'this architecture, or init_cfg=None to train from scratch', source)
    print_log(f'{what} into {name}: {counts}', logger='current',
              level=logging.WARNING if missing else logging.INFO)
    if hasattr(module, '_params_init_info'):
        update_init_info(module, init_info=self._get_init_info())



@contextmanager
def checked_pretrained() -> Iterator[None]:
    """While active, ``init_cfg`` ``Pretrained`` loads (``type='Pretrained'`` or
    ``type=PretrainedInit``) go through :func:`checked_pretrained_call`; mmengine's
    ``PretrainedInit.__call__`` is restored on exit. Nested use is fine."""
    upstream = PretrainedInit.__dict__['__call__']
    PretrainedInit.__call__ = checked_pretrained_call
    try:
        yield
    finally:
        PretrainedInit.__call__ = upstream
