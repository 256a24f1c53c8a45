import torch
from gattn_mm.models import Selection, TopKSelector
from mmpretrain.registry import MODELS


@MODELS.register_module()
class BorderFreeTopKSelector(TopKSelector):
    """Top-k cells, never within ``border`` cells of the image edge (slide edges,
    vignetting). Deterministic and ONNX-exportable like ``TopKSelector``."""

    def __init__(self, border: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.border = border

    def forward(self, attention: torch.Tensor, num_instances: int) -> Selection:
        b = self.border
        inner = torch.zeros_like(attention)
        inner[:, b:attention.size(1) - b, b:attention.size(2) - b] = 1
        masked = attention * inner
        selection = super().forward(masked / masked.flatten(1).sum(1)[:, None, None],
                                    num_instances)
        # scores and weights from the attention itself, so its gradient is unchanged
        scores = attention.flatten(1).gather(1, selection.index)
        selection.scores = scores
        selection.weights = scores / scores.sum(1, keepdim=True)
        return selection
