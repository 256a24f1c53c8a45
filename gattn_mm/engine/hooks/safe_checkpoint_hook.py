from typing import Any, Dict

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from mmpretrain.registry import HOOKS

_BUFFER_TAG = '__history_buffer__'


def to_plain(value: Any) -> Any:
    """Turn numpy values and containers into Python types ``weights_only`` accepts."""
    if isinstance(value, HistoryBuffer):
        log, count = value.data
        return {_BUFFER_TAG: True, 'log_history': np.asarray(log, float).tolist(),
                'count_history': np.asarray(count, float).tolist(),
                'max_length': int(value.max_length)}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_plain(value: Any) -> Any:
    """Inverse of :func:`to_plain` for history buffers."""
    if isinstance(value, dict):
        if value.get(_BUFFER_TAG):
            return HistoryBuffer(value['log_history'], value['count_history'],
                                 value['max_length'])
        return {k: from_plain(v) for k, v in value.items()}
    return value


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Keep Runner checkpoints loadable with ``torch.load(weights_only=True)``.

    mmengine stores the message hub as ``HistoryBuffer`` objects whose pickles need
    globals outside PyTorch's safe allowlist (allowlisting them would need
    ``getattr``, which defeats the safety). Before a checkpoint is saved, this hook
    converts the message hub and the meta to plain Python types; after one is
    loaded, it restores the history buffers, so ``--resume`` works unchanged.
    ``tools/train.py`` adds it when a config lacks it.
    """
    priority = 'LOWEST'  # after every hook that adds to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: Dict[str, Any]) -> None:
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: Dict[str, Any]) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain(checkpoint['message_hub'])
