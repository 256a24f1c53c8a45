from .runner_cfg import (available_cores, build_runner, ensure_plugin_import,
                         ensure_progress_bar, ensure_safe_checkpoints,
                         set_dataloader_defaults,
                         set_default_work_dir)

__all__ = ['available_cores', 'build_runner', 'ensure_plugin_import',
           'ensure_progress_bar', 'ensure_safe_checkpoints', 'set_dataloader_defaults',
           'set_default_work_dir']
