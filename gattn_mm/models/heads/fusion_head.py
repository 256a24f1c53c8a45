import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

FusionInputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@MODELS.register_module()
class FusionHead(ClsHead):
    """Classify an image from its global feature and its N instance features.

    The input is ``(global_feat, local_feats, weights)``: (B, C), (B, N, C') and
    (B, N) fusion weights that sum to 1 (from ``InstanceSampler``). Fusion rules:

    - ``concat`` (the paper): ``[g, l_1, ..., l_N]``, (B, C + N*C'); instances in the
      sampler's rank order.
    - ``attention``: ``[g, sum_n w_n l_n]``, (B, C + C'); the loss reaches the
      attention through the weights as well as through ``g``.
    - ``mean``: ``[g, mean_n l_n]``, (B, C + C').

    Optional auxiliary losses: ``global_loss_weight`` on logits of ``g`` alone and
    ``local_loss_weight`` on local-only logits, the per-instance logits pooled by
    ``local_pool`` (``attention``: weighted by ``w``; ``mean``; ``max``: multiple
    instance learning, the bag is as positive as its most positive instance: with
    a ``negative_class`` the bag takes the whole logit vector of the instance with
    the most evidence against that class, so a bag is positive iff one of its
    instances is; without one, each class's logit is its maximum over instances;
    ``lse``: log-mean-exp, a smooth max whose gradient reaches every instance early
    in training and focuses on the strongest ones later).

    Optional multiple-instance loss (``instance_loss_weight``) on the per-instance
    logits of the local classifier: in a bag labelled ``negative_class`` (the
    class meaning "absent", e.g. benign or "no 9") *every* instance is a clean
    negative; in any other bag the ``instance_topk`` instances with the most
    evidence for the bag's class carry its label, or, with ``instance_topk=0``
    (default), the bag's probability is the mean of its instances' probabilities
    (``-log mean_n p_n(y)``): every instance gets a share of the gradient in
    proportion to its probability, a soft top-k that bootstraps from an untrained
    reader. The dense negatives teach the reader what is not the target quickly.
    With ``negative_class=None`` only the positive rule applies (for tasks without
    an "absent" class).

    Args:
        num_classes (int): number of classes.
        in_channels (int): C, channels of the global feature.
        local_channels (int, optional): C', channels of an instance feature.
            Defaults to ``in_channels``.
        num_instances (int): N (needed by ``concat``). Defaults to 8.
        fusion (str): ``concat``, ``attention`` or ``mean``. Defaults to ``concat``.
        global_loss_weight (float): weight of the global-only loss. Defaults to 0.
        local_loss_weight (float): weight of the local-only loss. Defaults to 0.
        local_pool (str): pooling of the local-only logits. Defaults to ``attention``.
        instance_loss_weight (float): weight of the instance loss. Defaults to 0.
        negative_class (int, optional): the "absent" class. Defaults to 0.
        instance_topk (int): instances of a non-negative bag that get its label;
            0 for the soft rule. Defaults to 0.
        predict_from (str): logits of the predictions: ``fused`` (default) or
            ``local`` (the pooled instance logits, e.g. ``max`` pooling for
            presence tasks where one instance decides the label).
        dropout (float): dropout before the fused classifier. Defaults to 0.
        detach_local (bool): the fused classifier reads the instance features
            without passing its gradient to the local reader (the fusion weights
            still get it). Use it when the reader learns from the local/instance
            losses (multiple-instance learning): the fused loss would otherwise pull
            every instance of a positive bag towards the positive class. Defaults
            to False.
        loss (dict): loss config. Defaults to cross entropy.
    """
    FUSIONS = ('concat', 'attention', 'mean')
    POOLS = ('attention', 'mean', 'max', 'lse')

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 local_channels: Optional[int] = None,
                 num_instances: int = 8,
                 fusion: str = 'concat',
                 global_loss_weight: float = 0.,
                 local_loss_weight: float = 0.,
                 local_pool: str = 'attention',
                 instance_loss_weight: float = 0.,
                 negative_class: Optional[int] = 0,
                 instance_topk: int = 0,
                 predict_from: str = 'fused',
                 dropout: float = 0.,
                 detach_local: bool = False,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs):
        super().__init__(loss=loss, init_cfg=init_cfg, **kwargs)
        if fusion not in self.FUSIONS:
            raise ValueError(f'fusion must be one of {self.FUSIONS}, got {fusion!r}')
        if local_pool not in self.POOLS:
            raise ValueError(f'local_pool must be one of {self.POOLS}, got {local_pool!r}')
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if predict_from not in ('fused', 'local'):
            raise ValueError(f"predict_from must be 'fused' or 'local', got {predict_from!r}")
        if predict_from == 'local' and local_loss_weight <= 0 and instance_loss_weight <= 0:
            raise ValueError("predict_from='local' needs a trained local classifier: set "
                             "local_loss_weight or instance_loss_weight > 0")
        self.predict_from = predict_from
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.local_channels = local_channels or in_channels
        self.num_instances = num_instances
        self.fusion = fusion
        self.global_loss_weight = global_loss_weight
        self.local_loss_weight = local_loss_weight
        self.local_pool = local_pool
        self.instance_loss_weight = instance_loss_weight
        self.negative_class = negative_class
        self.instance_topk = instance_topk
        self.detach_local = detach_local
        n_local = num_instances if fusion == 'concat' else 1
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels + n_local * self.local_channels, num_classes)
        if global_loss_weight > 0:
            self.fc_global = nn.Linear(in_channels, num_classes)
        if local_loss_weight > 0 or instance_loss_weight > 0:
            self.fc_local = nn.Linear(self.local_channels, num_classes)

    def check_inputs(self, feats: FusionInputs) -> None:
        g, local, _ = feats
        if g.size(-1) != self.in_channels:
            raise ValueError(f'FusionHead.in_channels is {self.in_channels} but the global '
                             f'feature has {g.size(-1)} channels; set in_channels={g.size(-1)}')
        if local.size(-1) != self.local_channels:
            raise ValueError(
                f'FusionHead.local_channels is {self.local_channels} but the local backbone '
                f'gives {local.size(-1)} channels; set local_channels={local.size(-1)}')
        if self.fusion == 'concat' and local.size(1) != self.num_instances:
            raise ValueError(f'FusionHead.num_instances is {self.num_instances} but the '
                             f'sampler gives {local.size(1)} instances')

    def pre_logits(self, feats: FusionInputs) -> torch.Tensor:
        """Fused feature (B, C + N*C') for ``concat``, else (B, C + C')."""
        g, local, weights = feats  # (B, C), (B, N, C'), (B, N)
        if self.detach_local:
            local = local.detach()
        if self.fusion == 'concat':
            fused_local = local.flatten(1)
        elif self.fusion == 'attention':
            fused_local = torch.einsum('bn,bnc->bc', weights, local)
        else:
            fused_local = local.mean(dim=1)
        return torch.cat([g, fused_local], dim=1)

    def forward(self, feats: FusionInputs) -> torch.Tensor:
        """Fused logits (B, num_classes)."""
        self.check_inputs(feats)
        return self.fc(self.dropout(self.pre_logits(feats)))

    def instance_logits(self, feats: FusionInputs) -> torch.Tensor:
        """Per-instance logits (B, N, num_classes) of the local-only classifier."""
        if not hasattr(self, 'fc_local'):
            raise RuntimeError('instance logits need a local classifier: set '
                               'local_loss_weight or instance_loss_weight > 0 in the '
                               'FusionHead config')
        return self.fc_local(feats[1])

    def local_logits(self, feats: FusionInputs) -> torch.Tensor:
        """Local-only logits (B, num_classes): per-instance logits pooled."""
        weights = feats[2]
        per_instance = self.instance_logits(feats)  # (B, N, K)
        if self.local_pool == 'attention':
            return torch.einsum('bn,bnk->bk', weights, per_instance)
        if self.local_pool == 'mean':
            return per_instance.mean(dim=1)
        if self.local_pool == 'lse':
            return per_instance.logsumexp(dim=1) - math.log(per_instance.size(1))
        if self.negative_class is None:
            return per_instance.max(dim=1).values
        best = self.instance_evidence(per_instance).argmax(dim=1)  # (B,)
        return per_instance[torch.arange(per_instance.size(0)), best]

    def instance_evidence(self, per_instance: torch.Tensor) -> torch.Tensor:
        """Log-odds (B, N) of the other classes against ``negative_class`` for
        per-instance logits (B, N, K)."""
        k = self.negative_class
        others = torch.cat([per_instance[..., :k], per_instance[..., k + 1:]], dim=-1)
        return others.logsumexp(dim=-1) - per_instance[..., k]

    def loss(self, feats: FusionInputs, data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Fused loss plus the weighted auxiliary losses."""
        losses = self._get_loss(self(feats), data_samples, **kwargs)
        if self.global_loss_weight > 0:
            aux = self._get_loss(self.fc_global(feats[0]), data_samples, **kwargs)
            losses['loss_global'] = self.global_loss_weight * aux['loss']
        if self.local_loss_weight > 0:
            aux = self._get_loss(self.local_logits(feats), data_samples, **kwargs)
            losses['loss_local'] = self.local_loss_weight * aux['loss']
        if self.instance_loss_weight > 0:
            losses['loss_instance'] = self.instance_loss_weight * self.instance_loss(
                feats, data_samples)
        return losses

    def instance_loss(self, feats: FusionInputs, data_samples: List[DataSample]
                      ) -> torch.Tensor:
        """Multiple-instance loss on the per-instance logits (see the class doc)."""
        logits = self.instance_logits(feats)  # (B, N, K)
        B, N, K = logits.shape
        labels = torch.cat([s.gt_label for s in data_samples]).to(logits.device)  # (B,)
        log_p = logits.log_softmax(dim=-1)
        own = log_p.gather(2, labels.view(B, 1, 1).expand(B, N, 1))[..., 0]  # (B, N)
        if self.instance_topk > 0:  # the bag's best instances
            top = own.topk(min(self.instance_topk, N), dim=1).values.mean(dim=1)
        else:  # log of the mean instance probability
            top = own.logsumexp(dim=1) - math.log(N)
        if self.negative_class is None:
            return -top.mean()
        dense = own.mean(dim=1)  # every instance of a negative bag
        negative = labels == self.negative_class
        return -torch.where(negative, dense, top).mean()

    def predict(self, feats: FusionInputs,
                data_samples: Optional[List[Optional[DataSample]]] = None
                ) -> List[DataSample]:
        """DataSamples with ``pred_score`` and ``pred_label`` (see ``predict_from``)."""
        return self._get_predictions(self.predict_logits(feats), data_samples)

    def predict_logits(self, feats: FusionInputs) -> torch.Tensor:
        """The logits (B, num_classes) predictions are made from."""
        if self.predict_from == 'local':
            self.check_inputs(feats)
            return self.local_logits(feats)
        return self(feats)
