"""Checks of a checkpoint against the model it is loaded into.

mmengine loads checkpoints non-strictly (``load_from``, ``tools/test.py``,
``get_model``, the inferencers): a checkpoint of another model, of another class
count, or an empty one would load silently and leave random weights that then
predict with confidence. A gattn model refuses it: every parameter and buffer must be
present with its shape, as a finite tensor (NaN or inf weights would predict NaN),
and no other key may be there. Partial loading is meant for
a backbone's ``init_cfg=dict(type='Pretrained', prefix=...)``, which loads into the
backbone alone and is checked by its own rule (:mod:`gattn_mm.runtime.pretrained`).

Models of other classes (the baselines' plain ``ImageClassifier``, a user's config) are
checked with :func:`check_checkpoint_keys` too, inside
:func:`gattn_mm.runtime.exact_loading.exact_checkpoints` (the tools and
``GattnInferencer`` enter it).
"""
from typing import Dict, List

import torch
import torch.nn as nn

LEGACY_PREFIXES = ('local_backbone.', 'head.fc_local.')  # gattn-mm 0.1 names
SHOWN = 5  # keys listed per kind of mismatch


class CheckpointMismatchError(ValueError):
    """A checkpoint does not hold the weights of the model it is loaded into."""


def _first(keys: List[str]) -> str:
    more = f' and {len(keys) - SHOWN} more' if len(keys) > SHOWN else ''
    return ', '.join(keys[:SHOWN]) + more


def check_checkpoint_keys(module: nn.Module, state_dict: Dict, prefix: str, *args) -> None:
    """``load_state_dict`` pre-hook (``with_module=True``) of ``GatedAttentionClassifier``:
    raises :class:`CheckpointMismatchError` listing the first mismatching keys."""
    given = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    legacy = [k for k in given if k.startswith(LEGACY_PREFIXES)]
    if legacy:
        raise CheckpointMismatchError(
            f'this checkpoint has gattn-mm 0.1 parameter names ({legacy[0]!r} and '
            f'{len(legacy) - 1} more), which 0.2 renamed; upgrade it once with '
            f'python tools/model_converters/upgrade_gattn_checkpoint.py OLD.pth NEW.pth')
    expected = module.state_dict()
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    present = [k for k in expected if k in given]
    not_tensors = [f'{k} ({type(given[k]).__name__})' for k in present
                   if not isinstance(given[k], torch.Tensor)]
    tensors = [k for k in present if isinstance(given[k], torch.Tensor)]
    shapes = [f'{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}' for k in tensors
              if given[k].shape != expected[k].shape]
    not_finite = [k for k in tensors if given[k].is_floating_point()
                  and not bool(torch.isfinite(given[k]).all())]
    problems = [f'{len(missing)} missing ({_first(missing)})' if missing else '',
                f'{len(unexpected)} unexpected ({_first(unexpected)})' if unexpected else '',
                f'{len(shapes)} of another shape, checkpoint vs model ({_first(shapes)})'
                if shapes else '',
                f'{len(not_tensors)} not tensors ({_first(not_tensors)})' if not_tensors else '',
                f'{len(not_finite)} with NaN or inf values ({_first(not_finite)})'
                if not_finite else '']
    problems = [p for p in problems if p]
    if problems:
        raise CheckpointMismatchError(
            f'the checkpoint does not hold this model\'s weights: {"; ".join(problems)}. '
            f'Is it the checkpoint of this config (same backbone, reader, heads and '
            f'num_classes)? To start a backbone from other weights use its init_cfg='
            f"dict(type='Pretrained', checkpoint=..., prefix='backbone').")
