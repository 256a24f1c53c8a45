"""A downstream plugin adds a selector, a fusion, attention losses (one reads the
labels) and a head without editing gattn_mm: the parts are defined and registered here,
in this test module only, and a config names them, one line each; tools/train.py
imports this module through ``custom_imports`` (docs/extending.md, "Extending
gattn-mm")."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from gattn_mm.models import (BaseAttentionLoss, BaseFusion, BaseSelector, GattnHead,
                             Selection)
from mmpretrain.registry import MODELS

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)


@MODELS.register_module()
class EveryOtherCellSelector(BaseSelector):
    """The top cells among those of even flat index, equal weights."""
    exportable = True

    def forward(self, attention: torch.Tensor, num_instances: int) -> Selection:
        probs = attention.flatten(1)[:, ::2]  # (B, ceil(h*w/2))
        index = probs.detach().topk(num_instances, dim=1).indices * 2  # (B, N)
        w = attention.size(-1)
        centres = torch.stack([(index // w).float() + 0.5, (index % w).float() + 0.5], -1)
        scores = attention.flatten(1).gather(1, index)
        weights = torch.full_like(scores, 1 / num_instances)
        return Selection(centres=centres, scores=scores, weights=weights, index=index)


@MODELS.register_module()
class MaxFusion(BaseFusion):
    """``[g, max_n i_n]``, (B, C + C'): BaseFusion's default ``out_channels``."""

    def forward(self, global_feat, instance_feats, weights):
        return torch.cat([global_feat, instance_feats.max(dim=1).values], dim=1)


@MODELS.register_module()
class PeakAttentionLoss(BaseAttentionLoss):
    """Minus the mean of the attention's maximum: sharpens the attention."""
    default_name = 'loss_peak'

    def loss(self, state) -> torch.Tensor:
        return -state.attention.flatten(1).max(dim=1).values.mean()


@MODELS.register_module()
class AbsentFlatLoss(BaseAttentionLoss):
    """Reads the labels: the attention of an image of class 0 ("absent") is pulled
    towards uniform (its KL from uniform), the others are left free."""
    default_name = 'loss_flat'

    def loss(self, state) -> torch.Tensor:
        labels = torch.cat([s.gt_label for s in state.data_samples])
        absent = (labels.to(state.attention.device) == 0).float()  # (B,)
        attn = state.attention.float().flatten(1)
        kl = (attn * (attn.clamp_min(1e-12).log() + torch.log(torch.tensor(
            float(attn.size(1)))))).sum(dim=1)
        return (kl * absent).sum() / absent.sum().clamp_min(1)


@MODELS.register_module()
class GlobalPlusMeanHead(GattnHead):
    """``fc(g) + fc'(mean_n i_n)``: a head that reads the ``GattnState``."""

    def __init__(self, num_classes: int, in_channels: int, instance_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss')):
        super().__init__(loss=loss)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.instance_channels = instance_channels
        self.fc_global = nn.Linear(in_channels, num_classes)
        self.fc_instances = nn.Linear(instance_channels, num_classes)

    def forward(self, state) -> torch.Tensor:
        return self.fc_global(state.global_feat) + \
            self.fc_instances(state.instance_feats.mean(dim=1))


def test_parts_from_this_module_train_through_tools_train(tmp_path, tiny_digitbags):
    cfg = tmp_path / 'my_parts_cfg.py'
    cfg.write_text(
        f"_base_ = ['{osp.join(HERE, 'data', 'tiny_digitbags.py')}']\n"
        "custom_imports = dict(imports=['gattn_mm', 'test_extending'], "
        "allow_failed_imports=False)\n"
        "model = dict(\n"
        "    sampler=dict(selector=dict(_delete_=True, type='EveryOtherCellSelector')),\n"
        "    head=dict(fusion=dict(_delete_=True, type='MaxFusion')),\n"
        "    attention_losses=[dict(type='PeakAttentionLoss', loss_weight=0.5),\n"
        "                      dict(type='AbsentFlatLoss', loss_weight=0.1)])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    data = [f'{k}_dataloader.dataset.data_root={tiny_digitbags}' for k in ('train', 'val')]
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=8',
         'val_dataloader.dataset.indices=4', *data],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert 'Epoch(train) [1][2/2]' in log and 'loss_peak:' in log and 'loss_flat:' in log
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()
    # the model that trained is made of this module's parts
    from mmengine.config import Config
    model = MODELS.build(Config.fromfile(str(cfg)).model)
    assert type(model.sampler.selector).__name__ == 'EveryOtherCellSelector'
    assert type(model.head.fusion).__name__ == 'MaxFusion'
    assert [type(m).__name__ for m in model.attention_losses] == ['PeakAttentionLoss',
                                                                  'AbsentFlatLoss']
    model.eval()
    with torch.no_grad():
        state = model.forward_state(torch.rand(2, 3, 128, 128))
    assert state.num_instances == 4


def test_a_head_from_this_module_is_one_config_line():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(HERE, 'data', 'tiny_digitbags.py'))
    cfg.model.head = dict(type='GlobalPlusMeanHead', num_classes=2)  # widths measured
    model = MODELS.build(cfg.model)
    assert (model.head.in_channels, model.head.instance_channels) == (64, 128)
    from mmpretrain.structures import DataSample
    data = [DataSample().set_gt_label(v) for v in (0, 1)]
    losses = model(torch.rand(2, 3, 128, 128), data, mode='loss')
    assert 'loss' in losses and torch.isfinite(losses['loss'])
    model.eval()
    with torch.no_grad():
        samples = model(torch.rand(2, 3, 128, 128), data, mode='predict')
    assert samples[0].pred_score.shape == (2,)


@pytest.mark.parametrize('config', ['gattn_digitbags_my_parts.py',
                                    'gattn_digitbags_my_head.py'])
def test_the_readme_example_builds_and_steps(config):
    """README "Extending", docs/extending.md: examples/ holds the parts and configs."""
    sys.path.insert(0, osp.join(ROOT, 'examples'))
    try:
        from mmengine.config import Config
        cfg = Config.fromfile(osp.join(ROOT, 'examples', config))
        for name in cfg.custom_imports['imports']:
            __import__(name)
        model = MODELS.build(cfg.model)
    finally:
        sys.path.remove(osp.join(ROOT, 'examples'))
    from mmpretrain.structures import DataSample
    data = [DataSample().set_gt_label(v) for v in (0, 1)]
    losses = model(torch.rand(2, 3, 512, 512), data, mode='loss')
    assert {'loss_centre', 'loss_focus'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    if config.endswith('my_head.py'):
        assert type(model.head).__name__ == 'TopInstanceHead'
        assert (model.head.in_channels, model.head.instance_channels) == (64, 32)
