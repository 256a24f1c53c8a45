"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``."""
import os.path as osp
from copy import deepcopy

from mmengine.config import Config, ConfigDict


def ensure_safe_checkpoints(cfg: Config) -> Config:
    """Append ``SafeCheckpointHook`` to ``custom_hooks`` when the config lacks it, and
    save with ``GattnCheckpointHook`` (atomic writes, deleting after saving) where the
    config names mmpretrain's ``CheckpointHook`` (``default_hooks.checkpoint``) by its
    bare name, as configs not based on gattn-mm's ``default_runtime.py`` do; an
    explicit ``mmengine.CheckpointHook`` is kept."""
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if isinstance(checkpoint, dict) and checkpoint.get('type') == 'CheckpointHook':
        checkpoint['type'] = 'GattnCheckpointHook'
    hooks = list(cfg.get('custom_hooks') or [])
    for hook in hooks:
        if not isinstance(hook, dict):
            raise TypeError(f'custom_hooks entries must be dicts like dict(type=...), got '
                            f'{hook!r}; set hooks in a config file, --cfg-options cannot '
                            f'build dicts')
    if not any(h.get('type') in ('SafeCheckpointHook', 'mmpretrain.SafeCheckpointHook')
               for h in hooks):
        hooks.append(dict(type='SafeCheckpointHook'))
    cfg.custom_hooks = hooks
    return cfg


def ensure_plugin_import(cfg: Config) -> Config:
    """Make sure ``gattn_mm`` is in ``custom_imports`` so every process registers it."""
    imports = cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False)
    names = list(imports.get('imports', []))
    if 'gattn_mm' not in names:
        names.insert(0, 'gattn_mm')
    imports['imports'] = names
    cfg.custom_imports = imports
    cfg.setdefault('default_scope', 'mmpretrain')
    return cfg


def set_default_work_dir(cfg: Config, config_path: str, work_dir=None) -> None:
    """CLI > config > ``./work_dirs/<config name>``, as mmpretrain does."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def set_dataloader_defaults(cfg: Config, no_pin_memory=False,
                            no_persistent_workers=False) -> None:
    """pin_memory / persistent_workers defaults as in mmpretrain's tools."""
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(field, None) is None:
            continue
        loader = ConfigDict(pin_memory=True, persistent_workers=True,
                            collate_fn=dict(type='default_collate'))
        loader.update(deepcopy(cfg[field]))
        if no_pin_memory:
            loader['pin_memory'] = False
        if no_persistent_workers or not loader.get('num_workers', 0):
            loader['persistent_workers'] = False
        cfg[field] = loader
