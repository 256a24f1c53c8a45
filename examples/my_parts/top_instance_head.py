import torch
import torch.nn as nn
from gattn_mm.models import GattnHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class TopInstanceHead(GattnHead):
    """Classify an image from its global feature and its one instance of most
    attention: ``fc([g, i_top])``, logits (B, K). A ``GattnHead`` reads the
    ``GattnState``; loss and predictions are mmpretrain's ``ClsHead``'s.

    Args:
        num_classes (int): K.
        in_channels (int): C, channels of the global feature.
        instance_channels (int): C', channels of an instance feature.
    """

    def __init__(self, num_classes: int, in_channels: int, instance_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss'), init_cfg=None):
        super().__init__(loss=loss, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.in_channels, self.instance_channels = in_channels, instance_channels
        self.fc = nn.Linear(in_channels + instance_channels, num_classes)

    def forward(self, state) -> torch.Tensor:
        top = state.scores.argmax(dim=1)  # (B,)
        instance = state.instance_feats[torch.arange(len(top), device=top.device), top]
        return self.fc(torch.cat([state.global_feat, instance], dim=1))
