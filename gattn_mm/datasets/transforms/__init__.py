from .geometric import RandomFlipRotate90, ResizeToCanvas, StainJitter
from .loading import ImageReadError, LoadMicroscopyImage, read_image

__all__ = ['ImageReadError', 'LoadMicroscopyImage', 'read_image', 'RandomFlipRotate90',
           'ResizeToCanvas', 'StainJitter']
