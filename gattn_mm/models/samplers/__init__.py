from .contrast_peak_refiner import ContrastPeakRefiner
from .instance_sampler import InstanceSampler

__all__ = ['ContrastPeakRefiner', 'InstanceSampler']
