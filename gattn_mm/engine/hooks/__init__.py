from .attention_visualization_hook import AttentionVisualizationHook
from .progress_bar_hook import ProgressBarHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .time_budget_hook import TimeBudgetHook

__all__ = ['AttentionVisualizationHook', 'ProgressBarHook', 'SafeCheckpointHook',
           'TimeBudgetHook']
