from .base_selector import BaseSelector, CellSelector
from .sample_selector import SampleSelector
from .threshold_selector import ThresholdSelector
from .topk_selector import TopKSelector

__all__ = ['BaseSelector', 'CellSelector', 'SampleSelector', 'ThresholdSelector',
           'TopKSelector']
