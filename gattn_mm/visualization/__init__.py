from .attention_visualizer import caption_of, crop_strip, draw_attention, heat_overlay

__all__ = ['caption_of', 'crop_strip', 'draw_attention', 'heat_overlay']
