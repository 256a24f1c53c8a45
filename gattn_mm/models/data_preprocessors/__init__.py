from .native_data_preprocessor import NativeDataPreprocessor

__all__ = ['NativeDataPreprocessor']
