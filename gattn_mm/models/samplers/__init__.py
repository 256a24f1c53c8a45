from .instance_sampler import InstanceSampler

__all__ = ['InstanceSampler']
