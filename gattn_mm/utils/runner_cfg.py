"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``."""
import logging
import os
import os.path as osp
from copy import deepcopy
from typing import Sequence

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


def ensure_progress_bar(cfg: Config) -> Config:
    """Append ``ProgressBarHook`` to ``custom_hooks`` when the config lacks it: a bar
    of the epoch's iterations on a terminal, nothing in a file or pipe."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and h.get('type') in (
            'ProgressBarHook', 'mmpretrain.ProgressBarHook') for h in hooks):
        hooks.append(dict(type='ProgressBarHook'))
    cfg.custom_hooks = hooks
    return cfg


def set_default_work_dir(cfg: Config, config_path: str, work_dir=None) -> None:
    """CLI > config > ``./work_dirs/<config name>``, as mmpretrain does."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. a container's or
    ``taskset``'s share), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def has_accelerator() -> bool:
    """Whether the run has a device that pinned memory serves (CUDA, NPU, MLU, MUSA)."""
    from mmengine.device import get_device
    return get_device() not in ('cpu', 'mps')


def set_dataloader_defaults(cfg: Config, no_pin_memory=False,
                            no_persistent_workers=False) -> None:
    """Dataloader settings of the tools, fitted to the machine: ``pin_memory`` only
    with an accelerator (a CPU has no pinned memory to use), ``num_workers`` at most
    the cores available (:func:`available_cores`: a config's 4 workers run 2 on 2
    cores), ``persistent_workers`` as in mmpretrain's tools (off without workers).
    The config is changed, not mmengine's or torch's defaults."""
    pin, cores = has_accelerator() and not no_pin_memory, available_cores()
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(field, None) is None:
            continue
        loader = ConfigDict(pin_memory=True, persistent_workers=True,
                            collate_fn=dict(type='default_collate'))
        loader.update(deepcopy(cfg[field]))
        if not pin:
            loader['pin_memory'] = False
        if isinstance(loader.get('num_workers'), int) and loader['num_workers'] > cores:
            loader['num_workers'] = cores
        if no_persistent_workers or not loader.get('num_workers', 0):
            loader['persistent_workers'] = False
        cfg[field] = loader


# mmengine's Runner logs these at its start (about 300 lines with a gattn config): the
# environment, the whole config and the hooks' order. The log file keeps them all;
# the console shows them with the tools' --show-config.
STARTUP_DUMPS = ('\n' + '-' * 60 + '\nSystem environment:', 'Config:\n',
                 'Hooks will be executed in the following order')
# mmengine's own notes about its internals (its CheckpointHook builds a FileClient):
# nothing a user can act on
UPSTREAM_NOTES = ('"FileClient" will be deprecated in future',
                  '"HardDiskBackend" is the alias of "LocalBackend"')


class _MessageFilter(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: Sequence[str]):
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


class _QuietLogger:
    """Mixin of a Runner class: its logger drops mmengine's notes about its internals
    (:data:`UPSTREAM_NOTES`) and, unless ``show_config``, its console leaves out the
    startup dumps (:data:`STARTUP_DUMPS`; the log file keeps them)."""
    show_config = False

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        if not any(isinstance(f, _MessageFilter) for f in logger.filters):
            logger.addFilter(_MessageFilter(UPSTREAM_NOTES))
        if not self.show_config:
            for handler in logger.handlers:  # the console's (not a FileHandler)
                if type(handler) is logging.StreamHandler:
                    handler.addFilter(_MessageFilter(STARTUP_DUMPS))
        return logger


def build_runner(cfg: Config, show_config: bool = False):
    """The runner of ``cfg`` (mmengine's ``Runner``, or the config's ``runner_type``)
    as mmpretrain's tools build it, with a console that leaves out the environment,
    config and hook dumps unless ``show_config`` (the log file under the work dir and
    the config dumped there keep them) and mmengine's notes about its internals."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    base = RUNNERS.get(cfg.runner_type) if 'runner_type' in cfg else Runner
    if base is None:
        raise KeyError(f'runner_type={cfg.runner_type!r} is not a registered runner')
    runner_cls = type(base.__name__, (_QuietLogger, base), dict(show_config=show_config))
    runner = runner_cls.from_cfg(cfg)
    if not show_config:
        name = osp.basename(cfg.filename) if cfg.filename else f'{runner.timestamp}.py'
        runner.logger.info(f'config: {osp.join(runner.work_dir, name)} (the environment, '
                           f'the config and the hooks: --show-config, or the log in '
                           f'{runner.log_dir})')
    return runner
