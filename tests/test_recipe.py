"""Every shipped gattn config takes its model recipe from the one shared base,
configs/_base_/models/gattn_recipe.py: a config may set only the backbone and
reader (and their pretraining), the sizes and the label set."""
import fnmatch
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPE = osp.join(ROOT, 'configs', '_base_', 'models', 'gattn_recipe.py')
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'gattn_*.py')))
ALLOWED = (
    'data_preprocessor', 'data_preprocessor.*',  # the data's mean/std, classes
    'backbone.*', 'reader.*',  # networks and their pretraining
    'global_size', 'neck.in_channels',  # sizes
    'sampler.num_instances', 'sampler.crop_size', 'sampler.box_size', 'sampler.box_scale',
    'sampler.test_cfg.num_instances',
    'head.in_channels', 'head.instance_channels', 'instance_head.in_channels',
    'head.num_classes', 'instance_head.num_classes',  # the label set
    'instance_head.negative_class',
)
# single- or multi-label data; multi-label data are decided by the fused head (the
# instances' vote is single-label)
LABEL_SET_HEADS = ('FusionHead', 'MultiLabelFusionHead')


def flatten(value, prefix=''):
    """{dotted key: leaf value} of nested dicts (lists are leaves)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f'{prefix}{key}.'))
        return out if out else {prefix.rstrip('.'): {}}
    return {prefix.rstrip('.'): value}


def plain(cfg) -> dict:
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)


def recipe_differences(model: dict, recipe: dict):
    """Dotted keys where ``model`` differs from ``recipe`` outside ALLOWED."""
    ours, base = flatten(model), flatten(recipe)
    keys = set(ours) | set(base)
    multi_label = ours.get('head.type') == 'MultiLabelFusionHead'
    changed = [k for k in keys if ours.get(k, '<absent>') != base.get(k, '<absent>')
               and not (k == 'head.type' and ours[k] in LABEL_SET_HEADS)
               and not (k == 'predict_from' and multi_label and ours[k] == 'head')]
    return sorted(k for k in changed if not any(fnmatch.fnmatch(k, p) for p in ALLOWED))


def test_there_are_configs_to_check():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'gattn_digitbags.py', 'gattn_megapixel.py', 'gattn_megapixel_max.py',
            'gattn_megapixel_multi.py', 'gattn_fungi.py', 'gattn_breakhis.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_model_is_the_recipe(path):
    recipe = plain(Config.fromfile(RECIPE).model)
    model = plain(Config.fromfile(path).model)
    assert recipe_differences(model, recipe) == []


def test_a_recipe_change_is_caught():
    recipe = plain(Config.fromfile(RECIPE).model)
    model = plain(Config.fromfile(osp.join(ROOT, 'configs', 'gattn_megapixel.py')).model)
    model['attention_losses'] = model['attention_losses'][:1]
    model['sampler']['selector']['min_distance'] = 1
    model['head']['detach_instances'] = False
    model['head']['type'] = 'LinearClsHead'
    assert recipe_differences(model, recipe) == [
        'attention_losses', 'head.detach_instances', 'head.type',
        'sampler.selector.min_distance']
    del model['instance_head']['mil_loss']
    assert 'instance_head.mil_loss.positive' in recipe_differences(model, recipe)
    model['predict_from'] = 'head'  # only multi-label data may
    assert 'predict_from' in recipe_differences(model, recipe)
