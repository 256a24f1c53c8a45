"""Whole-slide images read lazily, region by region, from their pyramid."""
from .base import OPENSLIDE_EXTENSIONS, READABLE_EXTENSIONS, Slide, SlideError, open_slide
from .openslide_slide import OpenSlideSlide
from .tiff_slide import TiffSlide

__all__ = ['OPENSLIDE_EXTENSIONS', 'READABLE_EXTENSIONS', 'OpenSlideSlide', 'Slide',
           'SlideError', 'TiffSlide', 'open_slide']
