from typing import Any, Dict

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmpretrain.registry import HOOKS
from gattn_mm.utils.plain_state import from_plain, to_plain


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Keep Runner checkpoints loadable with ``torch.load(weights_only=True)``.

    mmengine stores the message hub as ``HistoryBuffer`` objects whose pickles need
    globals outside PyTorch's safe allowlist (allowlisting them would need
    ``getattr``, which defeats the safety). Before a checkpoint is saved, this hook
    converts the message hub and the meta to plain Python types
    (:func:`gattn_mm.utils.plain_state.to_plain`; what cannot be expressed is
    dropped and logged); after one is loaded, it restores the history buffers, so
    ``--resume`` works unchanged. ``tools/train.py`` adds it when a config lacks it.
    """
    priority = 'LOWEST'  # after every hook that adds to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: Dict[str, Any]) -> None:
        dropped = []
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = to_plain(checkpoint[key], key, dropped)
        if dropped:
            print_log(f'SafeCheckpointHook: not saved (no plain form): {dropped}',
                      logger='current', level=30)

    def after_load_checkpoint(self, runner, checkpoint: Dict[str, Any]) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain(checkpoint['message_hub'])
