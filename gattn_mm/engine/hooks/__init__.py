from .attention_visualization_hook import AttentionVisualizationHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .time_budget_hook import TimeBudgetHook

__all__ = ['AttentionVisualizationHook', 'SafeCheckpointHook', 'TimeBudgetHook']
