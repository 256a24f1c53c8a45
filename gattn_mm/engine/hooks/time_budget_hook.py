import time
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mmpretrain.registry import HOOKS
from gattn_mm.models.utils import positive_number


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """Stop training before the step that would overrun a wall-clock budget (e.g.
    a baseline trained for the time gattn took). The learning-rate schedule stays
    the config's; the last finished step is the one checkpointed and tested.

    The step is the loop's: an epoch under ``EpochBasedTrainLoop``, an iteration
    under ``IterBasedTrainLoop`` (for models whose one epoch already overruns the
    budget, such as a classifier reading 1500 px images whole). An iteration-based
    run stops by ending its schedule at the current iteration, so that
    ``CheckpointHook`` saves it and the loop's last validation runs, as at the
    planned end.

    Args:
        seconds (float): training budget in seconds (validation included).
    """
    priority = 'LOW'  # before CheckpointHook (VERY_LOW) sees the shortened schedule

    def __init__(self, seconds: float):
        self.seconds = positive_number(seconds, 'TimeBudgetHook.seconds')
        self.start: Optional[float] = None

    def before_train(self, runner) -> None:
        self.start = time.perf_counter()

    def _overruns(self, steps_done: int) -> Optional[float]:
        """Seconds spent, when one more step of the mean length would overrun."""
        elapsed = time.perf_counter() - self.start
        return elapsed if elapsed + elapsed / steps_done > self.seconds else None

    def after_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            return
        elapsed = self._overruns(runner.epoch + 1)  # runner.epoch: epochs done - 1 here
        if elapsed is not None:
            runner.logger.info(f'TimeBudgetHook: {elapsed:.0f} s of {self.seconds:.0f} s '
                               f'spent after {runner.epoch + 1} epochs; stopping')
            runner.train_loop.stop_training = True

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        loop = runner.train_loop
        if not isinstance(loop, IterBasedTrainLoop) or runner.iter + 1 >= loop.max_iters:
            return
        elapsed = self._overruns(runner.iter + 1)  # runner.iter: iterations done - 1
        if elapsed is not None:
            runner.logger.info(f'TimeBudgetHook: {elapsed:.0f} s of {self.seconds:.0f} s '
                               f'spent after {runner.iter + 1} iterations; stopping')
            # mmengine has no public setter; hooks read the end through max_iters
            loop._max_iters = runner.iter + 1
