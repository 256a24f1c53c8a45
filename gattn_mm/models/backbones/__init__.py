from .standardized_reader import StandardizedReader

__all__ = ['StandardizedReader']
