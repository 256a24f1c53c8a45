from .runner_cfg import (ensure_plugin_import, ensure_safe_checkpoints,
                         set_dataloader_defaults, set_default_work_dir)

__all__ = ['ensure_plugin_import', 'ensure_safe_checkpoints', 'set_dataloader_defaults',
           'set_default_work_dir']
