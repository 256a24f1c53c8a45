import torch
import torch.nn as nn
from mmengine.model import BaseModule


class GatedAttention(BaseModule):
    """The gated attention layer of Ilse et al., 2018: the attention logit of an item
    ``x`` is ``w^T (tanh(V x) * sigmoid(U x))``.

    One layer for every gated attention of gattn-mm: over the cells of the glance's
    feature map (``GatedAttentionNeck``) and over the instances (``GatedInstanceFusion``)
    subclass it; their parameters are ``attention_V``, ``attention_U`` and
    ``attention_w``.

    Args:
        in_channels (int): channels C of an item.
        hidden_channels (int): size D of the hidden layer. Defaults to 128.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 128, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.attention_V = nn.Linear(in_channels, hidden_channels)  # tanh branch
        self.attention_U = nn.Linear(in_channels, hidden_channels)  # sigmoid gate
        self.attention_w = nn.Linear(hidden_channels, 1)

    def gated_logits(self, items: torch.Tensor) -> torch.Tensor:
        """Attention logits (...) of items (..., C)."""
        gated = torch.tanh(self.attention_V(items)) * torch.sigmoid(self.attention_U(items))
        return self.attention_w(gated)[..., 0]
