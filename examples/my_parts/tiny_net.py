import torch
import torch.nn as nn
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS


@MODELS.register_module()
class TinyNet(BaseBackbone):
    """Three stride-2 convolutions: (B, 3, H, W) -> ((B, channels, H/8, W/8),)."""

    def __init__(self, channels: int = 32, init_cfg=None):
        super().__init__(init_cfg)
        layers, c_in = [], 3
        for _ in range(3):
            layers += [nn.Conv2d(c_in, channels, 3, 2, 1), nn.BatchNorm2d(channels), nn.ReLU()]
            c_in = channels
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor):
        return (self.body(x),)
