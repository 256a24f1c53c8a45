"""Every entry config builds offline (pretrained weights switched off) and runs."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import gattn_mm  # noqa: F401
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')) +
                 glob.glob(osp.join(ROOT, 'configs', 'baselines', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds_offline_and_runs(path):
    cfg = Config.fromfile(path)
    # the documented switch: --cfg-options model.backbone.init_cfg=None
    cfg.merge_from_dict({'model.backbone.init_cfg': None})
    # (the plain ImageClassifier baselines have no sampler)
    if cfg.model.get('sampler', {}).get('box_size_um'):  # an array has no pixel size: boxes in px
        # (the µm path on slides: tests/test_physical_scale.py)
        cfg.merge_from_dict({'model.sampler.box_size_um': None, 'model.sampler.box_size': 448})
    assert cfg.default_scope == 'mmpretrain' and 'gattn_mm' in cfg.custom_imports.imports
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    # through the config's own data preprocessor: a stacked batch (canvas configs)
    # or images at their own size (native configs, NativeDataPreprocessor)
    image = torch.randint(0, 256, (3, 600, 500), dtype=torch.uint8)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[image], data_samples=[DataSample()]))
        preds = model(**data, mode='predict')
    assert preds[0].pred_score.numel() == cfg.model.head.num_classes


# configs whose ImageNet URL is given as 'gattn-safe:URL' (configs/_base_/models/gattn_resnet50.py)
GATTN_SAFE_URLS = ('gattn_fungi.py', 'gattn_breakhis.py', 'gattn_fungi_convnext-t.py',
                   'gattn_fungi_swin-t.py')


def test_pretrained_init_is_configured_for_real_data():
    for name in ('gattn_fungi.py', 'gattn_breakhis.py', 'gattn_fungi_convnext-t.py',
                 'gattn_fungi_swin-t.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
        init = cfg.model.backbone.init_cfg
        url = init.checkpoint[len('gattn-safe:'):] if name in GATTN_SAFE_URLS else \
            init.checkpoint  # gattn-safe: read safely without the runtime
        assert init.type == 'Pretrained' and url.startswith('https://download.openmmlab.com/')


@pytest.mark.parametrize('name', ['gattn_fungi.py', 'gattn_breakhis.py', 'gattn_slides.py'])
def test_class_count_set_in_the_heads_reaches_the_data_preprocessor(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    cfg.merge_from_dict({'model.backbone.init_cfg': None, 'model.head.num_classes': 7,
                         'model.instance_head.num_classes': 7})
    model = MODELS.build(cfg.model)
    assert model.data_preprocessor.num_classes == 7
    assert type(model.data_preprocessor).__name__ == 'NativeDataPreprocessor'
