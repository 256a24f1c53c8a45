import math

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class PriorAnnealHook(Hook):
    """Fade the hand-made contrast prior out of the attention's teaching.

    The attention losses that read the contrast prior (``ContrastPriorLoss``, and
    ``EvidenceDistillLoss(with_contrast=True)``) scale it by their ``prior_scale``;
    this hook sets it before every training iteration from the share ``t`` of the
    schedule done: 1 until ``begin``, a half cosine from 1 to 0 between ``begin``
    and ``end``, 0 after. The prior finds the structures while the reader knows no
    class; once it does, the attention learns from what the reader found alone.

    Args:
        begin (float): share of the training iterations where the fading starts.
            Defaults to 0.5.
        end (float): share where the prior is gone. Defaults to 1.
    """
    priority = 'NORMAL'

    def __init__(self, begin: float = 0.5, end: float = 1.0):
        if not (isinstance(begin, (int, float)) and isinstance(end, (int, float))
                and 0 <= begin < end <= 1):
            raise ValueError(f'PriorAnnealHook needs 0 <= begin < end <= 1, got '
                             f'begin={begin!r}, end={end!r}')
        self.begin, self.end = float(begin), float(end)

    def scale(self, t: float) -> float:
        """The prior's scale at the share ``t`` of the schedule."""
        if t <= self.begin:
            return 1.0
        if t >= self.end:
            return 0.0
        return 0.5 * (1 + math.cos(math.pi * (t - self.begin) / (self.end - self.begin)))

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        scale = self.scale(runner.iter / max(runner.max_iters, 1))
        for loss in getattr(model, 'attention_losses', None) or ():
            loss.prior_scale = scale
