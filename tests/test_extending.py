"""A downstream plugin adds a selector, a fusion and an attention loss without editing
gattn_mm: the parts are defined and registered here, in this test module only, and a
config names them; tools/train.py imports this module through ``custom_imports``."""
import os
import os.path as osp
import subprocess
import sys

import torch
import torch.nn as nn

from gattn_mm.models import BaseAttentionLoss, BaseSelector, Selection
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
class MaxFusion(nn.Module):
    """``[g, max_n i_n]``."""
    num_instances = None

    def out_channels(self, global_channels: int, instance_channels: int) -> int:
        return global_channels + instance_channels

    def forward(self, global_feat, instance_feats, weights):
        return torch.cat([global_feat, instance_feats.max(dim=1).values], dim=1)


@MODELS.register_module()
class PeakAttentionLoss(BaseAttentionLoss):
    """Minus the mean of the attention's maximum: sharpens the attention."""
    default_name = 'loss_peak'

    def loss(self, state) -> torch.Tensor:
        return -state.attention.flatten(1).max(dim=1).values.mean()


def test_parts_from_this_module_train_through_tools_train(tmp_path, tiny_digitbags):
    cfg = tmp_path / 'my_parts_cfg.py'
    cfg.write_text(
        f"_base_ = ['{osp.join(HERE, 'data', 'tiny_digitbags.py')}']\n"
        "custom_imports = dict(imports=['gattn_mm', 'test_extending'], "
        "allow_failed_imports=False)\n"
        "model = dict(\n"
        "    sampler=dict(selector=dict(_delete_=True, type='EveryOtherCellSelector')),\n"
        "    head=dict(fusion=dict(_delete_=True, type='MaxFusion')),\n"
        "    attention_losses=[dict(type='PeakAttentionLoss', loss_weight=0.5)])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    data = [f'{k}_dataloader.dataset.data_root={tiny_digitbags}' for k in ('train', 'val')]
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=8',
         'val_dataloader.dataset.indices=4', *data],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert 'Epoch(train) [1][2/2]' in log and 'loss_peak:' in log
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()
    # the model that trained is made of this module's parts
    from mmengine.config import Config
    model = MODELS.build(Config.fromfile(str(cfg)).model)
    assert type(model.sampler.selector).__name__ == 'EveryOtherCellSelector'
    assert type(model.head.fusion).__name__ == 'MaxFusion'
    assert [type(m).__name__ for m in model.attention_losses] == ['PeakAttentionLoss']
    model.eval()
    with torch.no_grad():
        state = model.forward_state(torch.rand(2, 3, 128, 128))
    assert state.num_instances == 4


def test_the_readme_example_builds_and_steps():
    """README "Extending gattn-mm": examples/ holds the parts and the config."""
    sys.path.insert(0, osp.join(ROOT, 'examples'))
    try:
        from mmengine.config import Config
        cfg = Config.fromfile(osp.join(ROOT, 'examples', 'gattn_digitbags_my_parts.py'))
        for name in cfg.custom_imports['imports']:
            __import__(name)
        model = MODELS.build(cfg.model)
    finally:
        sys.path.remove(osp.join(ROOT, 'examples'))
    from mmpretrain.structures import DataSample
    data = [DataSample().set_gt_label(v) for v in (0, 1)]
    losses = model(torch.rand(2, 3, 512, 512), data, mode='loss')
    assert 'loss_centre' in losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
