from .attention_visualization_hook import AttentionVisualizationHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['AttentionVisualizationHook', 'SafeCheckpointHook']
