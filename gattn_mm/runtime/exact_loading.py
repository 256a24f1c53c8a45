"""A checkpoint loaded into a whole model must hold exactly that model's weights, for
every model class, while the runtime is active.

mmengine loads checkpoints non-strictly (``load_from``, ``tools/test.py``,
``get_model``, the inferencers): a checkpoint of another model, of another class
count, or an empty one would load silently and leave random weights that then
predict with confidence. A gattn model refuses it by itself (its ``load_state_dict``
pre-hook, :func:`gattn_mm.models.classifiers.checkpoint_keys.check_checkpoint_keys`).
Models of other classes (the baselines' plain ``ImageClassifier``, a user's config) are
checked the same way inside :func:`exact_checkpoints`, which
:func:`gattn_mm.runtime.safe_checkpoints` enters for the tools (test, train's
``load_from`` and ``--resume``, infer, visualise, export) and ``GattnInferencer``.
Outside it, mmpretrain's own API keeps upstream (non-strict) behaviour for them.
Partial loading is meant for a backbone's ``init_cfg`` ``Pretrained`` and is checked by
its own rule (:mod:`gattn_mm.runtime.pretrained`).

mmengine has no registry or hook for this: its ``load_checkpoint`` and ``Runner`` call
the module function ``mmengine.runner.checkpoint.load_state_dict``, so the context
wraps that function while it is active and restores it on exit.
"""
from contextlib import contextmanager
from typing import Iterator

import torch.nn as nn
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import checkpoint as mmengine_checkpoint

from gattn_mm.models.classifiers.checkpoint_keys import check_checkpoint_keys


def _unwrapped(module: nn.Module) -> nn.Module:
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module  # as mmengine's load_state_dict loads into it
    return module


@contextmanager
def exact_checkpoints() -> Iterator[None]:
    """While active, every state dict mmengine's ``load_state_dict`` loads into a model
    (``Runner.load_checkpoint`` for ``load_from``/``--resume``/``tools/test.py``,
    ``load_checkpoint`` for ``get_model`` and the inferencers) is checked with
    ``check_checkpoint_keys`` first, whatever the model's class: a mismatch raises
    ``CheckpointMismatchError`` listing the first keys. ``init_cfg`` ``Pretrained``
    loads are partial by design and do not go through it. Nested use is fine."""
    upstream = mmengine_checkpoint.load_state_dict

    def load_state_dict(module, state_dict, strict=False, logger=None):
        check_checkpoint_keys(_unwrapped(module), state_dict, '')
        return upstream(module, state_dict, strict, logger)

    mmengine_checkpoint.load_state_dict = load_state_dict
    try:
        yield
    finally:
        mmengine_checkpoint.load_state_dict = upstream
