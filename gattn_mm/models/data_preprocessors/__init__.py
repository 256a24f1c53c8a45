from .canvas_data_preprocessor import CanvasDataPreprocessor
from .native_data_preprocessor import NativeDataPreprocessor

__all__ = ['CanvasDataPreprocessor', 'NativeDataPreprocessor']
