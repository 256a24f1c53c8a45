from .attention_visualizer import (AttentionVisualizer, crop_strip, draw_attention,
                                   heat_overlay)

__all__ = ['AttentionVisualizer', 'crop_strip', 'draw_attention', 'heat_overlay']
