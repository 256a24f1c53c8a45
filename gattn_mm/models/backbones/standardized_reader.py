from typing import Optional

import torch
from mmengine.model import BaseModule

from mmpretrain.registry import MODELS
from ..utils import positive_number


@MODELS.register_module()
class StandardizedReader(BaseModule):
    """A backbone that reads every crop standardised on its own: each channel of a
    crop shifted to zero mean and scaled to unit standard deviation (over the crop's
    pixels) before ``backbone`` reads it.

    What it is for: the reader of the instances, learning from scratch by
    multiple-instance learning. The crops of one image share its stain and
    illumination, which vary from image to image far more than the few cells whose
    morphology tells the class; standardised, the crops keep their structures
    (shapes, relative intensities) and lose the image's colour cast. On SynthCells
    presence bags (``benchmarks/experiments/results/synthcells``,
    ``prior_bags_mil.py``, ``NORM=instance``) the reader alone took off within
    300-400 steps (two seeds) where it stayed at chance for 800 without it.

    Args:
        backbone (dict): config of the network that reads the standardised crops
            (any mmpretrain backbone).
        min_std (float): floor of the standard deviation, in the units of the
            model's normalised input (a crop of glass is not blown up to its noise).
            Defaults to 0.05.
        init_cfg (dict, optional): initialisation config (the backbone's own
            ``init_cfg`` initialises or loads the backbone).
    """

    def __init__(self, backbone: dict, min_std: float = 0.05,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.min_std = positive_number(min_std, 'reader.min_std')
        self.backbone = MODELS.build(backbone)

    def standardize(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops (M, C, h, w), each channel of each crop standardised: (M, C, h, w)."""
        mean = crops.mean(dim=(2, 3), keepdim=True)
        std = crops.std(dim=(2, 3), keepdim=True).clamp_min(self.min_std)
        return (crops - mean) / std

    def forward(self, crops: torch.Tensor):
        """The backbone's outputs for the standardised crops (M, C, h, w)."""
        return self.backbone(self.standardize(crops))
