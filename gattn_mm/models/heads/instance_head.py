import math
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample, label_to_onehot
from ..utils import GatedAttention, GattnState
from .gattn_head import GattnHead


@MODELS.register_module()
class InstanceHead(GattnHead):
    """Classify every instance, and the image from its instances.

    A linear layer gives per-instance logits (B, N, K) from the instance features
    (B, N, C'); ``pool`` turns them into the image's logits (B, K):

    - ``attention``: weighted by the sampler's fusion weights;
    - ``gated``: weighted by a learned gated attention over the instance features
      (Ilse et al., 2018: ``softmax_n(w^T (tanh(V i_n) * sigmoid(U i_n)))``),
      trained by ``loss`` on the pooled logits (attention-MIL). The sampler's weights
      do not enter: they follow the glance's attention, often peaked on one
      instance, where the pooling must learn from what the reader sees. For data
      where a few instances of many carry the image's class (a species told by a
      few cells among normal ones and decoys): the pooling learns which instances
      decide, where a vote of all would be outvoted by the rest;
    - ``mean``;
    - ``max``: the image is as positive as its most positive instance. With a
      ``negative_class`` the image takes the whole logit vector of its instance with
      the most evidence against that class (positive iff one instance is); without
      one, each class takes its maximum over the instances;
    - ``lse``: log-mean-exp, a smooth max;
    - ``mil``: the rule of the label set, as :class:`MILLoss` reads it: with a
      ``negative_class``, as ``max`` (an image is positive iff one instance is);
      without one, as ``mean`` (the instances vote).

    The evidence of an instance is what the reader found in it: with ``gated``
    pooling, the log of its pooling weight (the instances that decide); else with a
    ``negative_class``, the log-odds of the other classes against it; without one,
    the log-probability of its most likely class (a confident reading of a
    structure of some class scores near 0, a reading of clutter far below).
    Attention losses that learn from the reader read it.

    Args:
        num_classes (int): K.
        in_channels (int): C', channels of an instance feature.
        pool (str): one of :attr:`POOLS` (above).
        negative_class (int, optional): the class meaning "absent" (e.g. benign or
            "no 9"), or None for tasks without one. Defaults to 0.
        loss (dict, optional): loss on the pooled logits (``loss_local``).
        mil_loss (dict, optional): multiple-instance loss on the per-instance
            logits (``loss_instance``), e.g. ``dict(type='MILLoss')``. At least one
            of ``loss`` and ``mil_loss`` is needed.
    """
    POOLS = ('attention', 'gated', 'mean', 'max', 'lse', 'mil')

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 pool: str = 'attention',
                 negative_class: Optional[int] = 0,
                 loss: Optional[dict] = None,
                 mil_loss: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs):
        super().__init__(loss=loss, init_cfg=init_cfg, **kwargs)
        if pool not in self.POOLS:
            raise ValueError(f'instance_head.pool must be one of {self.POOLS}, got {pool!r}')
        if num_classes <= 0:
            raise ValueError(f'instance_head.num_classes={num_classes} must be positive')
        if negative_class is not None and not 0 <= negative_class < num_classes:
            raise ValueError(f'instance_head.negative_class={negative_class} is not a class '
                             f'of num_classes={num_classes} (or None)')
        if loss is None and mil_loss is None:
            raise ValueError('instance_head needs loss (on the pooled logits) or mil_loss '
                             '(on the instances), else it never learns')
        if pool == 'gated' and loss is None:
            raise ValueError("instance_head.pool='gated' learns its pooling from loss (on "
                             "the pooled logits), e.g. dict(type='CrossEntropyLoss'); "
                             'got loss=None')
        self.mil_loss = None if mil_loss is None else MODELS.build(mil_loss)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.pool = pool
        self.negative_class = negative_class
        self.fc = nn.Linear(in_channels, num_classes)
        self.gate = GatedAttention(in_channels) if pool == 'gated' else None

    @property
    def labels_instances(self) -> bool:
        """True with a ``mil_loss``: it gives the instances classes of the image."""
        return self.mil_loss is not None

    def instance_logits(self, state: GattnState) -> torch.Tensor:
        """Per-instance logits (B, N, K): ``state.instance_logits`` when the classifier
        has set them, else computed from the instance features."""
        if state.instance_logits is not None:
            return state.instance_logits
        return self.fc(state.instance_feats)

    def pool_weights(self, state: GattnState) -> torch.Tensor:
        """The weights (B, N) of the ``attention`` and ``gated`` pooling: the
        sampler's, or with ``gated`` the learned gated attention over the instance
        features (B, N, C'); they sum to 1 over N."""
        if self.gate is None:
            return state.weights
        return self.gate.gated_logits(state.instance_feats).float().softmax(dim=1)

    def forward(self, state: GattnState) -> torch.Tensor:
        """The image's logits (B, K), as mmpretrain's heads: the per-instance logits
        pooled (:meth:`pooled`)."""
        return self.pooled(self.instance_logits(state), self.pool_weights(state))

    def instance_evidence(self, state: GattnState) -> torch.Tensor:
        """Evidence (B, N) of the instances of ``state``: with ``gated`` pooling the
        log of their pooling weights, else :meth:`evidence` of their logits."""
        if self.gate is not None:
            return self.pool_weights(state).clamp_min(1e-12).log()
        return self.evidence(self.instance_logits(state))

    def evidence(self, logits: torch.Tensor) -> torch.Tensor:
        """Evidence (B, N) of per-instance logits (B, N, K): log-odds of the other
        classes against ``negative_class``, or the top log-probability without one."""
        k = self.negative_class
        if k is None:
            return logits.float().log_softmax(dim=-1).max(dim=-1).values
        others = torch.cat([logits[..., :k], logits[..., k + 1:]], dim=-1)
        return others.logsumexp(dim=-1) - logits[..., k]

    def deciding(self, logits: torch.Tensor, pred_label: torch.Tensor,
                 evidence: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The indices (M,) of the instances of one image, per-instance logits (N, K),
        that decided its predicted ``pred_label`` (class indices): with ``gated``
        pooling (``evidence`` (N,): the log pooling weights), the fewest instances
        that carry half of the pooled probability of the predicted classes, the
        largest share first; else with a ``negative_class``, the one instance of
        most evidence (an image is positive iff one instance is: that one, or the
        lack of it, decides); without one, the instances whose own class is
        predicted (the votes for it; none when no instance reads a predicted
        class)."""
        if self.gate is not None and evidence is not None:
            probs = logits.float().softmax(dim=-1)[:, pred_label.to(logits.device).view(-1)]
            share = evidence.float().exp() * probs.sum(dim=-1)  # (N,)
            order = share.argsort(descending=True)
            carried = share[order].cumsum(0) < share.sum() / 2
            return order[:int(carried.sum()) + 1]
        if self.negative_class is not None:
            return self.evidence(logits[None])[0].argmax().view(1)
        own = logits.argmax(dim=-1)  # (N,)
        return torch.isin(own, pred_label.to(own.device).view(-1)).nonzero().view(-1)

    def pooled(self, logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The image's logits (B, K) from per-instance logits (B, N, K)."""
        if self.pool in ('attention', 'gated'):
            return torch.einsum('bn,bnk->bk', weights.to(logits.dtype), logits)
        if self.pool == 'mean' or (self.pool == 'mil' and self.negative_class is None):
            return logits.mean(dim=1)
        if self.pool == 'lse':
            return logits.logsumexp(dim=1) - math.log(logits.size(1))
        if self.negative_class is None:
            return logits.max(dim=1).values
        best = self.evidence(logits).argmax(dim=1)  # (B,)
        index = best[:, None, None].expand(-1, 1, logits.size(2))  # (B, 1, K)
        return logits.gather(1, index)[:, 0]  # each image's best row (no batch fixed)

    def loss(self, state: GattnState, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        logits = self.instance_logits(state)
        losses = {}
        if self.loss_module is not None:
            pooled = self.pooled(logits, self.pool_weights(state))
            losses['loss_local'] = self._get_loss(pooled, data_samples, **kwargs)['loss']
        if self.mil_loss is not None:
            losses['loss_instance'] = self.mil_loss(
                logits, mil_targets(data_samples, self.num_classes), self.negative_class)
        return losses

    def predict(self, state: GattnState,
                data_samples: Optional[List[Optional[DataSample]]] = None
                ) -> List[DataSample]:
        return self._get_predictions(self(state), data_samples)


def mil_targets(data_samples: List[DataSample], num_classes: int) -> torch.Tensor:
    """The 0/1 targets (B, K) of the samples: one-hot ``gt_label`` (several ones for
    multi-label samples) or a 0/1 ``gt_score``; mixed scores (Mixup, CutMix) are
    refused: which instances would carry which share of a class?"""
    if 'gt_score' not in data_samples[0]:
        return torch.stack([label_to_onehot(s.gt_label, num_classes)
                            for s in data_samples])
    scores = torch.stack([s.gt_score for s in data_samples])  # (B, K)
    if not ((scores == 0) | (scores == 1)).all():
        raise ValueError('instance_head.mil_loss needs whole classes per image, but the '
                         'gt_score of this batch is mixed (Mixup/CutMix batch augments '
                         'in model.train_cfg): remove the augments or the mil_loss')
    return scores
