from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn

from mmpretrain.models.heads import ClsHead
from mmpretrain.structures import DataSample
from ..utils import GattnState


class GattnHead(ClsHead):
    """A head that classifies an image from its :class:`GattnState` (the glance's
    global feature, the instances, their weights), with mmpretrain's head contract:
    ``forward(state)`` gives the image's logits (B, K), ``loss(state, data_samples)``
    a dict of losses, ``predict(state, data_samples)`` the DataSamples.

    ``GatedAttentionClassifier`` passes the state to a ``GattnHead`` and the global
    feature ``(global_feat,)`` to any other mmpretrain head (e.g. ``LinearClsHead``),
    whose losses it logs as ``loss_global``.

    Args:
        loss (dict | nn.Module, optional): the loss of the image logits, as
            ``ClsHead``'s; None for a head that has none (e.g. an instance head that
            learns from its instances alone): ``loss_module`` is then None.
        **kwargs: ``ClsHead``'s other arguments (topk, cal_acc, init_cfg).
    """

    def __init__(self,
                 loss: Union[dict, nn.Module, None] = dict(type='CrossEntropyLoss',
                                                           loss_weight=1.0),
                 **kwargs):
        super().__init__(loss=nn.Identity() if loss is None else loss, **kwargs)
        if loss is None:  # no loss on the image logits: no loss module either, and
            # no None child left among the modules (mmengine's get_flops walks them)
            del self.loss_module
            self.loss_module = None

    def forward(self, state: GattnState) -> torch.Tensor:
        """The image's logits (B, K)."""
        raise NotImplementedError

    def loss(self, state: GattnState, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        return self._get_loss(self(state), data_samples, **kwargs)

    def predict(self, state: GattnState,
                data_samples: Optional[List[Optional[DataSample]]] = None
                ) -> List[DataSample]:
        return self._get_predictions(self(state), data_samples)

    def instance_weights(self, state: GattnState) -> Optional[torch.Tensor]:
        """The weights (B, N) this head gives the instances when it weighs them
        itself (a fusion with its own instance attention), else None."""
        return None

    @property
    def trains_reader(self) -> bool:
        """Whether this head's loss reaches the reader (the instance features)."""
        return True

    @property
    def labels_instances(self) -> bool:
        """Whether this head's loss gives each instance a class from its image's
        label (then labels mixed by batch augments, Mixup/CutMix, cannot be used)."""
        return False
