import time
from typing import Optional

from mmengine.hooks import Hook

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """Stop training at the end of the epoch after which the next one would overrun
    a wall-clock budget (e.g. a baseline trained for the time gattn took). The
    learning-rate schedule stays the config's; the last finished epoch is the one
    checkpointed and tested.

    Args:
        seconds (float): training budget in seconds (validation included).
    """
    priority = 'LOW'

    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ValueError(f'TimeBudgetHook.seconds must be > 0, got {seconds!r}')
        self.seconds = float(seconds)
        self.start: Optional[float] = None

    def before_train(self, runner) -> None:
        self.start = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        elapsed = time.perf_counter() - self.start
        per_epoch = elapsed / (runner.epoch + 1)  # runner.epoch: epochs done - 1 here
        if elapsed + per_epoch > self.seconds:
            runner.logger.info(f'TimeBudgetHook: {elapsed:.0f} s of {self.seconds:.0f} s '
                               f'spent after {runner.epoch + 1} epochs; stopping')
            runner.train_loop.stop_training = True
