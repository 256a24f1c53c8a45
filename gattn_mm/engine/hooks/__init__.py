from .attention_visualization_hook import AttentionVisualizationHook
from .prior_anneal_hook import PriorAnnealHook
from .progress_bar_hook import ProgressBarHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .time_budget_hook import TimeBudgetHook

__all__ = ['AttentionVisualizationHook', 'PriorAnnealHook', 'ProgressBarHook',
           'SafeCheckpointHook', 'TimeBudgetHook']
