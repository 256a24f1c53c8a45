from typing import Sequence, Tuple, Union

import torch

from mmpretrain.registry import MODELS
from ..utils import GatedAttention


@MODELS.register_module()
class GatedAttentionNeck(GatedAttention):
    """Gated attention pooling over the cells of a feature map (Ilse et al., 2018;
    the layer :class:`~gattn_mm.models.utils.GatedAttention`).

    Every cell ``f_k`` of the last feature map (B, C, h, w) is an instance; its
    attention is ``a_k = softmax_k(w^T (tanh(V f_k) * sigmoid(U f_k)))``. The
    attention-weighted sum of the cells is the global feature.

    The output is a tuple ``(attention, pooled)``: ``attention`` (B, h, w) sums to 1
    over the cells of each image, ``pooled`` (B, C) is the attention-pooled feature.
    As the pooled feature is the last element, the neck replaces
    ``GlobalAveragePooling`` in a plain ``ImageClassifier`` + ``LinearClsHead`` config.

    Args:
        in_channels (int): channels C of the backbone's last feature map.
        hidden_channels (int): size D of the hidden attention layer. Defaults to 128.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 128, init_cfg=None):
        super().__init__(in_channels, hidden_channels, init_cfg=init_cfg)
        self.in_channels = in_channels

    def check_input(self, feat: torch.Tensor) -> None:
        """Raise a clear error when ``feat`` is not a (B, in_channels, h, w) map."""
        if feat.dim() != 4:
            raise ValueError(
                f'GatedAttentionNeck needs a feature map (B, C, h, w) from the backbone, '
                f'got a tensor of shape {tuple(feat.shape)}. For ConvNeXt set '
                f'`gap_before_final_norm=False`, for ViT/DeiT set `out_type="featmap"`.')
        if feat.size(1) != self.in_channels:
            raise ValueError(
                f'GatedAttentionNeck.in_channels is {self.in_channels} but the backbone '
                f'gives {feat.size(1)} channels (feature map {tuple(feat.shape)}); set '
                f'`in_channels={feat.size(1)}` in the neck (and the head) config.')

    def attention_logits(self, feat: torch.Tensor) -> torch.Tensor:
        """Attention logits (B, h*w) of a feature map (B, C, h, w)."""
        return self.gated_logits(feat.flatten(2).transpose(1, 2))  # cells (B, h*w, C)

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Forward.

        Args:
            inputs: the backbone's outputs; the last one is used, (B, C, h, w).

        Returns:
            tuple: attention (B, h, w) and the pooled feature (B, C).
        """
        feat = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        self.check_input(feat)
        B, C, h, w = feat.shape
        attn = self.attention_logits(feat).softmax(dim=-1)  # (B, h*w)
        pooled = torch.einsum('bn,bcn->bc', attn, feat.flatten(2))  # (B, C)
        return attn.unflatten(1, (h, w)), pooled  # (B, h, w): no traced batch fixed
