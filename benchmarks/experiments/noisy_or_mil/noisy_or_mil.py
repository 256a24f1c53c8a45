"""Scratch experiment (not in the package): MILLoss with a noisy-OR rule for the
positive images of a presence task: P(image has k) = 1 - prod_n (1 - p_n(k))."""
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from gattn_mm.models.losses import MILLoss


@MODELS.register_module()
class NoisyOrMILLoss(MILLoss):

    def forward(self, logits, targets, negative_class=None):
        B, N, K = logits.shape
        if targets.dim() == 1:
            targets = F.one_hot(targets.to(logits.device).long(), K)
        targets = targets.to(logits.device, torch.float32)
        log_p = logits.float().log_softmax(dim=-1)  # (B, N, K)
        log_not = torch.log1p(-log_p.exp().clamp(max=1 - 1e-6))  # log(1 - p_n(k))
        s = log_not.sum(dim=1)  # (B, K) log prod (1 - p)
        carried = torch.log((-torch.expm1(s)).clamp_min(1e-12))  # log P(some instance is k)
        loss = -(targets * carried).sum(dim=1) / targets.sum(dim=1).clamp_min(1)
        if negative_class is not None:
            dense = -log_p[..., negative_class].mean(dim=1)
            loss = torch.where(targets[:, negative_class] > 0, dense, loss)
        return self.loss_weight * loss.mean()
