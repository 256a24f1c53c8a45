from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
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
        topk, cal_acc, init_cfg: as ``ClsHead``'s.
    """

    def __init__(self,
                 loss: Union[dict, nn.Module, None] = dict(type='CrossEntropyLoss',
                                                           loss_weight=1.0),
                 topk: Union[int, Sequence[int]] = (1, ),
                 cal_acc: bool = False,
                 init_cfg: Optional[dict] = None):
        BaseModule.__init__(self, init_cfg=init_cfg)  # ClsHead's attributes, its loss optional
        self.topk, self.cal_acc = topk, cal_acc
        self.loss_module = loss if loss is None or isinstance(loss, nn.Module) \
            else MODELS.build(loss)

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
