import atexit
import logging
import sys
from typing import Dict, List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A progress bar of the running epoch (or iteration-based schedule), validation
    and test, drawn with rich below the log lines while the console is a terminal.

    mmengine logs every ``default_hooks.logger.interval`` iterations; on a CPU, where
    an iteration of a large-image model takes seconds, the console is otherwise still
    for minutes. The bar shows the iterations done, the time spent and left. mmengine's
    console handler is pointed at rich's stdout while the bar is shown, so that log
    lines print above it. Only on the main process, and only when stdout is a
    terminal: in a file, a pipe or a scheduler's log the hook draws nothing and the
    log is mmengine's. ``tools/train.py`` and ``tools/test.py`` add it.
    """
    priority = 'VERY_LOW'

    def __init__(self):
        self._progress = None
        self._tasks: Dict[str, int] = {}  # 'train', 'val', 'test': their bars
        self._streams: List[Tuple[logging.StreamHandler, object]] = []

    def _begin(self, runner, phase: str, description: str, total: Optional[int],
               completed: int = 0) -> None:
        if self._progress is None:
            from rich.console import Console
            console = Console(file=sys.stdout, soft_wrap=True)  # log lines unwrapped
            if not console.is_terminal or not is_main_process():
                return
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress,
                                       TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            self._progress = Progress(
                TextColumn('{task.description}'), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                transient=True)
            self._progress.start()  # sys.stdout is now rich's: printed above the bar
            for handler in runner.logger.handlers:  # the console's, not a FileHandler
                if type(handler) is logging.StreamHandler:
                    self._streams.append((handler, handler.setStream(sys.stdout)))
            atexit.register(self._stop)  # a run that fails leaves the terminal sane
        self._end(phase)
        self._tasks[phase] = self._progress.add_task(description, total=total,
                                                     completed=completed)

    def _advance(self, phase: str) -> None:
        if phase in self._tasks:
            self._progress.advance(self._tasks[phase])

    def _end(self, phase: str) -> None:
        if phase in self._tasks:
            self._progress.remove_task(self._tasks.pop(phase))

    def _stop(self) -> None:
        if self._progress is None:
            return
        self._progress.stop()
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._progress, self._tasks, self._streams = None, {}, []

    def before_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):  # one epoch: the schedule
            self._begin(runner, 'train', 'train', runner.max_iters, runner.iter)
        else:
            self._begin(runner, 'train', f'epoch {runner.epoch + 1}/{runner.max_epochs}',
                        len(runner.train_dataloader))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._advance('train')

    def after_train_epoch(self, runner) -> None:
        self._end('train')

    def before_val_epoch(self, runner) -> None:
        self._begin(runner, 'val', 'val', len(runner.val_dataloader))

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._advance('val')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._end('val')

    def before_test_epoch(self, runner) -> None:
        self._begin(runner, 'test', 'test', len(runner.test_dataloader))

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._advance('test')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._end('test')

    def after_run(self, runner) -> None:
        self._stop()
