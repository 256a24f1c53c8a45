from typing import Optional, Union

import torch
import torch.nn as nn

from mmpretrain.registry import MODELS
from ..fusions import BaseFusion
from ..utils import GattnState
from .gattn_head import GattnHead


@MODELS.register_module()
class FusionHead(GattnHead):
    """Classify an image from its global feature fused with its instance features.

    The ``fusion`` part (a ``BaseFusion``: ``ConcatFusion``, ``AttentionFusion``,
    ``MeanFusion``, ``GatedInstanceFusion`` or your own, see
    ``gattn_mm/models/fusions``) turns the global feature (B, C), the
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
        self.fusion = build_fusion(fusion, self.instance_channels)
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

    def instance_weights(self, state: GattnState) -> Optional[torch.Tensor]:
        """The weights (B, N) the fusion gives the instances, or None for a fusion
        without its own (``BaseFusion.instance_weights``)."""
        return self.fusion.instance_weights(state.instance_feats, state.weights)

    @property
    def trains_reader(self) -> bool:
        """False when the instance features are read detached."""
        return not self.detach_instances


def build_fusion(cfg: Union[dict, nn.Module], instance_channels: int) -> BaseFusion:
    """Build a fusion part (a built one is taken as it is); one with learned layers
    (``needs_channels``) is given the instance channels C'."""
    if isinstance(cfg, nn.Module):
        cls = type(cfg)
    else:
        cls = MODELS.get(cfg['type']) if isinstance(cfg.get('type'), str) else cfg.get('type')
    if not (isinstance(cls, type) and issubclass(cls, BaseFusion)):
        name = getattr(cls, '__name__', None) or cfg.get('type')
        raise TypeError(f'model.head.fusion ({name}) must be a BaseFusion '
                        f'(gattn_mm/models/fusions): subclass it and register it in '
                        f"mmpretrain's MODELS")
    if isinstance(cfg, nn.Module):
        return cfg
    if cls.needs_channels:
        return MODELS.build(cfg, default_args=dict(instance_channels=instance_channels))
    return MODELS.build(cfg)
