"""The typed containers the stages of a gattn model hand to each other.

Letters in shapes: B images, N instances per image, V views per instance, h x w cells
of the attention map, H x W input pixels, C global channels, C' reader channels,
K classes.
"""
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Selection:
    """What a selector returns: N instances of each image, in cell units.

    Attributes:
        centres (Tensor): (B, N, 2) instance centres (y, x) in cells; the centre of
            cell (i, j) is (i + 0.5, j + 0.5). No gradient.
        scores (Tensor): (B, N) attention mass of each instance (with gradient).
        weights (Tensor): (B, N) fusion weights, summing to 1 over N (with gradient).
        extents (Tensor, optional): (B, N, 2) (h, w) of each instance in cells, for
            selectors that find regions; None when an instance is one cell. The
            sampler never makes a box smaller than its ``box_size``.
        index (Tensor, optional): (B, N) flat cell index of each instance, for
            selectors that pick cells.
    """
    centres: torch.Tensor
    scores: torch.Tensor
    weights: torch.Tensor
    extents: Optional[torch.Tensor] = None
    index: Optional[torch.Tensor] = None


@dataclass
class GattnState:
    """Everything one forward pass of ``GatedAttentionClassifier`` computes.

    Attributes:
        inputs (ImageBatch): the full-resolution batch: a ``CanvasBatch`` (its
            ``images`` (B, 3, H, W)) or a ``NativeBatch``; both give the contrast of
            the cells (``gray_std``), the crops and the images' ``extents``.
        attention (Tensor): (B, h, w) attention over the cells, sums to 1.
        global_feat (Tensor): (B, C) attention-pooled glance feature.
        boxes (Tensor): (B, N, 4) xyxy instance boxes in input pixels (no gradient).
        scores (Tensor): (B, N) attention mass of each instance.
        weights (Tensor): (B, N) fusion weights, summing to 1 over N.
        crops (Tensor): (B*N, 3, s_h, s_w) the crops of the boxes (view 0), of the
            sampler's ``crop_size``.
        instance_feats (Tensor): (B, N, C') the reader's features, averaged over
            the test views.
        instance_logits (Tensor, optional): (B, N, K) from the instance head.
        evidence (Tensor, optional): (B, N) the instance head's evidence of each
            instance (see ``InstanceHead.evidence``).
        data_samples (list[DataSample], optional): the batch's samples, with their
            labels in training (``gt_label``, or ``gt_score``): what an attention loss
            that learns from the labels reads. None when none are given (``mode=
            'tensor'``).
    """

    @property
    def num_instances(self) -> int:
        """N, the one source of the number of instances of this pass."""
        return self.boxes.size(1)

    inputs: 'ImageBatch'  # noqa: F821 (models.utils.batch)
    attention: torch.Tensor
    global_feat: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    weights: torch.Tensor
    crops: torch.Tensor
    instance_feats: torch.Tensor
    # filled by the classifier when the model has an instance head
    instance_logits: Optional[torch.Tensor] = None
    evidence: Optional[torch.Tensor] = None
    data_samples: Optional[list] = None
