from typing import Optional

from mmpretrain.models.heads import MultiLabelClsHead
from mmpretrain.registry import MODELS
from .fusion_head import FusionHead


@MODELS.register_module()
class MultiLabelFusionHead(FusionHead):
    """:class:`FusionHead` for multi-label data, with mmpretrain's multi-label
    conventions (those of ``MultiLabelClsHead``): one-hot targets from ``gt_label``,
    a sigmoid per class, a class predicted when its score reaches ``thr`` (or the
    ``topk`` best).

    Args:
        num_classes (int): K.
        in_channels (int): C, channels of the global feature.
        loss (dict): defaults to the sigmoid cross entropy.
        thr (float, optional): score threshold; 0.5 when neither it nor ``topk``
            is given.
        topk (int, optional): predict the k best classes.
        **kwargs: the other :class:`FusionHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss', use_sigmoid=True),
                 thr: Optional[float] = None,
                 topk: Optional[int] = None,
                 **kwargs):
        super().__init__(num_classes, in_channels, loss=loss, **kwargs)
        self.thr = 0.5 if thr is None and topk is None else thr
        self.topk = topk

    _get_loss = MultiLabelClsHead._get_loss
    _get_predictions = MultiLabelClsHead._get_predictions
