import torch

from mmpretrain.registry import MODELS
from ..losses import ContrastPriorLoss
from ..utils import positive_number
from .gated_attention_classifier import GatedAttentionClassifier


@MODELS.register_module()
class FixedAttentionClassifier(GatedAttentionClassifier):
    """A gattn model whose learned attention is replaced by a hand-made one: the
    ablations of ``tools/benchmarks/accuracy.py``, run on a trained gattn
    checkpoint (same glance features for the fusion, same reader, same heads).

    - ``contrast``: the contrast prior alone, softmax of the z-scored gray contrast
      of the full-resolution pixels in each cell (:func:`gray_std`) at
      ``temperature``, as :class:`ContrastPriorLoss` teaches it; no learned
      parameter.
    - ``random``: every cell gets a random attention (uniform in [0, 1),
      normalised), so the selector picks random cells.

    Args:
        attention (str): ``contrast`` or ``random``.
        temperature (float): softmax temperature of ``contrast``. Defaults to 0.5.
        **kwargs: the :class:`GatedAttentionClassifier` arguments.
    """
    SOURCES = ('contrast', 'random')

    def __init__(self, attention: str, temperature: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if attention not in self.SOURCES:
            raise ValueError(f'FixedAttentionClassifier.attention must be one of '
                             f'{self.SOURCES}, got {attention!r}')
        self.attention_source = attention
        self.temperature = positive_number(temperature, 'FixedAttentionClassifier.temperature')

    def attend(self, inputs: torch.Tensor):
        """The hand-made attention (B, h, w) on the learned glance's grid, and the
        learned global feature (B, C)."""
        attention, global_feat = super().attend(inputs)
        B, h, w = attention.shape
        if self.attention_source == 'contrast':
            scores = ContrastPriorLoss.prior(inputs, (h, w)) / self.temperature
            fixed = scores.softmax(dim=1)
        else:
            fixed = torch.rand(B, h * w, device=inputs.device)
            fixed = fixed / fixed.sum(dim=1, keepdim=True)
        return fixed.view(B, h, w).to(attention.dtype), global_feat
