"""What a gattn prediction carries beside its class: the attention, the instances,
what each instance says and which ones decided, and boxes in the original pixels."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmpretrain.structures import DataSample
from .gattn_state import GattnState


def set_instance_fields(samples: List[DataSample], state: GattnState,
                        instance_head: Optional[nn.Module] = None,
                        fusion_weights: Optional[torch.Tensor] = None) -> None:
    """Set on each sample: ``attention`` (h, w), ``boxes`` (N, 4, xyxy in input
    pixels), ``instance_scores`` (N,) attention masses; with an instance head
    ``instance_evidence`` (N,), ``instance_probs`` (N, K) each instance's class
    probabilities, ``deciding_instances`` (M,) the indices of the instances that
    decided the predicted label (``InstanceHead.deciding``) and, for a head without an
    "absent" class, ``instance_labels`` (N,) the class each instance votes for; with
    ``fusion_weights`` (B, N), the weights a fused head gives the instances, those
    (N,)."""
    for i, sample in enumerate(samples):
        for name, value in (('attention', state.attention), ('boxes', state.boxes),
                            ('instance_scores', state.scores),
                            ('instance_evidence', state.evidence),
                            ('fusion_weights', fusion_weights)):
            if value is not None:
                sample.set_field(value[i].detach(), name, field_type='data')
        if instance_head is None or state.instance_logits is None:
            continue
        logits = state.instance_logits[i].detach()  # (N, K)
        sample.set_field(logits.float().softmax(dim=-1), 'instance_probs', field_type='data')
        evidence = None if state.evidence is None else state.evidence[i].detach()
        sample.set_field(instance_head.deciding(logits, sample.pred_label, evidence),
                         'deciding_instances', field_type='data')
        if instance_head.negative_class is None:
            sample.set_field(logits.argmax(dim=-1), 'instance_labels', field_type='data')


def set_original_boxes(samples: List[DataSample], boxes: torch.Tensor,
                       fits: Optional[Sequence[Tuple[int, int]]] = None,
                       global_size: Optional[Tuple[int, int]] = None) -> None:
    """``ori_boxes`` (N, 4) in the original image's pixels. For a native batch
    (``fits``: the (h, w) of each image in the glance of ``global_size``) the boxes
    are in native (level-0) pixels already, and the metainfo ``attention_extent``
    (h, w) is the share of the attention map the image covers; on a canvas, the boxes
    are divided by the metainfo's resize ``scale_factor`` (w, h) when it has one."""
    for i, sample in enumerate(samples):
        box = boxes[i].detach()
        if fits is not None:
            sample.set_field(box, 'ori_boxes', field_type='data')
            sample.set_metainfo(dict(attention_extent=(
                fits[i][0] / global_size[0], fits[i][1] / global_size[1])))
            continue
        scale = sample.get('scale_factor')
        if scale is not None:
            sx, sy = float(scale[0]), float(scale[1])
            sample.set_field(box / box.new_tensor([sx, sy, sx, sy]), 'ori_boxes',
                             field_type='data')
