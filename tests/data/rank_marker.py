"""Test helper: a hook that writes ``rank<r>.done`` into the work dir after training."""
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class RankMarkerHook(Hook):

    def after_run(self, runner):
        with open(osp.join(runner.work_dir, f'rank{get_rank()}.done'), 'w') as f:
            f.write(str(runner.iter))
