from typing import Dict, List, Optional

import torch
import torch.nn as nn

from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..utils import GattnState


@MODELS.register_module()
class FusionHead(ClsHead):
    """Classify an image from its global feature fused with its instance features.

    The ``fusion`` part (``ConcatFusion``, ``AttentionFusion``, ``MeanFusion`` or
    your own, see ``gattn_mm/models/fusions``) turns the global feature (B, C), the
    instance features (B, N, C') and the fusion weights (B, N) of a
    :class:`GattnState` into one vector; a linear layer gives the logits (B, K).

    Args:
        num_classes (int): K.
        in_channels (int): C, channels of the global feature.
        instance_channels (int, optional): C', channels of an instance feature.
            Defaults to ``in_channels``.
        fusion (dict): the fusion part. Defaults to ``AttentionFusion``. A fusion
            class with ``needs_channels = True`` gets ``instance_channels``.
        detach_instances (bool): the fused classifier reads the instance features
            without passing its gradient to the reader (the fusion weights still
            get it). Use it when the reader learns from the instance head
            (multiple-instance learning): the fused loss would otherwise pull every
            instance of a positive bag towards the positive class. Defaults to False.
        loss (dict): loss config. Defaults to cross entropy.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 instance_channels: Optional[int] = None,
                 fusion: dict = dict(type='AttentionFusion'),
                 detach_instances: bool = False,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs):
        super().__init__(loss=loss, init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'head.num_classes={num_classes} must be a positive integer')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.instance_channels = instance_channels or in_channels
        self.fusion = fusion if isinstance(fusion, nn.Module) else build_fusion(
            fusion, self.instance_channels)
        self.detach_instances = detach_instances
        self.fc = nn.Linear(self.fusion.out_channels(in_channels, self.instance_channels),
                            num_classes)

    def pre_logits(self, state: GattnState) -> torch.Tensor:
        """The fused feature (B, fusion.out_channels(C, C'))."""
        feats = state.instance_feats  # (B, N, C')
        if self.detach_instances:
            feats = feats.detach()
        return self.fusion(state.global_feat, feats, state.weights)

    def forward(self, state: GattnState) -> torch.Tensor:
        """Fused logits (B, K)."""
        return self.fc(self.pre_logits(state))

    def loss(self, state: GattnState, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        return self._get_loss(self(state), data_samples, **kwargs)

    def predict(self, state: GattnState,
                data_samples: Optional[List[Optional[DataSample]]] = None
                ) -> List[DataSample]:
        return self._get_predictions(self(state), data_samples)


def build_fusion(cfg: dict, instance_channels: int) -> nn.Module:
    """Build a fusion part; one with learned layers (``needs_channels``) is given
    the instance channels C'."""
    cls = MODELS.get(cfg['type']) if isinstance(cfg.get('type'), str) else cfg.get('type')
    if getattr(cls, 'needs_channels', False):
        return MODELS.build(cfg, default_args=dict(instance_channels=instance_channels))
    return MODELS.build(cfg)
