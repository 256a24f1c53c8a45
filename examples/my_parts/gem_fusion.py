import torch
from gattn_mm.models import BaseFusion
from mmpretrain.registry import MODELS


@MODELS.register_module()
class GeMFusion(BaseFusion):
    """``[g, (mean_n i_n^p)^(1/p)]``: generalised-mean pooling of the instances, between
    the mean (p=1) and the max (p -> inf); (B, C + C'), BaseFusion's default
    ``out_channels``; any N."""

    def __init__(self, p: float = 3.0):
        super().__init__()
        self.p = p

    def forward(self, global_feat, instance_feats, weights):
        pooled = instance_feats.clamp_min(1e-6).pow(self.p).mean(dim=1).pow(1 / self.p)
        return torch.cat([global_feat, pooled], dim=1)
