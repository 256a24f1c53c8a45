"""Every shipped gattn config takes its model recipe from the one shared base,
configs/_base_/models/gattn_recipe.py: a config may set only the backbone and
reader (and their pretraining), the sizes and the label set."""
import copy
import fnmatch
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPE = osp.join(ROOT, 'configs', '_base_', 'models', 'gattn_recipe.py')
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'gattn_*.py')))
ALLOWED = (
    # the input path (canvas or native) and the data's mean/std, channels, classes
    'data_preprocessor.type', 'data_preprocessor.mean', 'data_preprocessor.std',
    'data_preprocessor.to_rgb', 'data_preprocessor.num_classes',
    'backbone.*', 'reader.*',  # networks and their pretraining
    'global_size', 'neck.in_channels',  # sizes
    'sampler.num_instances', 'sampler.crop_size', 'sampler.box_size', 'sampler.box_scale',
    'sampler.box_size_um', 'sampler.tissue_mask',  # slides: boxes in µm, on tissue only
    'sampler.refiner.*',  # microscopy: boxes moved onto the structure at full resolution
    'sampler.explore_prior',  # from scratch: training boxes also from the contrast prior
    'sampler.test_cfg.num_instances',
    'sampler.test_cfg.views',  # boxes moved onto their structure are read as they are
    'head.in_channels', 'head.instance_channels', 'instance_head.in_channels',
    'head.num_classes', 'instance_head.num_classes',  # the label set
    'instance_head.negative_class',
)
# the rule of a label set whose class a few instances among many carry (species told
# by a few cells): the instances pooled by a learned gated attention, trained by cross
# entropy on the pooled logits alone (no MIL loss, presence tasks included), deciding
# alone; exactly this, nothing else
GATED_RULE = {'instance_head.pool': 'gated', 'instance_head.loss.type': 'CrossEntropyLoss',
              'instance_head.mil_loss': None, 'predict_from': 'instance_head'}
# multi-label data (evaluated by multi-label metrics) are decided by the multi-label
# fused head (the instances' vote is single-label)
MULTI_LABEL_METRICS = ('MultiLabelMetric', 'AveragePrecision')


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


def is_multi_label(cfg) -> bool:
    """Whether a config's data are multi-label: its val metrics say so."""
    evaluator = cfg.get('val_evaluator') or []
    evaluator = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    return any(e.get('type') in MULTI_LABEL_METRICS for e in evaluator)


def recipe_differences(model: dict, recipe: dict, multi_label: bool = False):
    """Dotted keys where ``model`` differs from ``recipe`` outside ALLOWED; on
    multi-label data the fused head is the multi-label one and decides alone."""
    ours, base = flatten(model), flatten(recipe)
    if all(ours.get(k, '<absent>') == v for k, v in GATED_RULE.items()):
        ours = {k: v for k, v in ours.items() if k not in GATED_RULE}
        base = {k: v for k, v in base.items()  # the rule replaces the recipe's MIL loss
                if k not in GATED_RULE and not k.startswith('instance_head.mil_loss.')}
    keys = set(ours) | set(base)
    label_set = {'head.type': 'MultiLabelFusionHead', 'predict_from': 'head'}
    changed = [k for k in keys if ours.get(k, '<absent>') != base.get(k, '<absent>')
               and not (multi_label and ours.get(k) == label_set.get(k))]
    return sorted(k for k in changed if not any(fnmatch.fnmatch(k, p) for p in ALLOWED))


def test_there_are_configs_to_check():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'gattn_digitbags.py', 'gattn_megapixel.py', 'gattn_megapixel_max.py',
            'gattn_megapixel_multi.py', 'gattn_fungi.py', 'gattn_breakhis.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_model_is_the_recipe(path):
    recipe = plain(Config.fromfile(RECIPE).model)
    cfg = Config.fromfile(path)
    assert recipe_differences(plain(cfg.model), recipe, is_multi_label(cfg)) == []


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
    gated = copy.deepcopy(model)  # the gated rule, whole: allowed; in part: caught
    gated['instance_head'].update(pool='gated', loss=dict(type='CrossEntropyLoss'),
                                  mil_loss=None)
    gated['predict_from'] = 'instance_head'
    assert not any(k.startswith(('instance_head', 'predict_from'))
                   for k in recipe_differences(gated, recipe))
    gated['predict_from'] = ['instance_head', 'head']  # the rule without its decision
    assert {'instance_head.loss.type', 'instance_head.mil_loss',
            'instance_head.pool'} <= set(recipe_differences(gated, recipe))
    gated['predict_from'] = 'instance_head'
    gated['instance_head']['mil_loss'] = dict(type='MILLoss', positive='noisy_or',
                                              negative='bag')  # a MIL loss beside it
    assert {'instance_head.pool', 'instance_head.mil_loss.negative'} <= set(
        recipe_differences(gated, recipe))  # the rule in part: caught
    gated['instance_head']['mil_loss'] = None
    gated['instance_head']['pool'] = 'mean'
    assert {'instance_head.loss.type', 'instance_head.mil_loss',
            'instance_head.pool', 'predict_from'} <= set(recipe_differences(gated, recipe))
    model['predict_from'] = 'head'  # only multi-label data may
    assert 'predict_from' in recipe_differences(model, recipe)
    assert 'predict_from' not in recipe_differences(model, recipe, multi_label=True)
    model['head']['type'] = 'MultiLabelFusionHead'  # on single-label data: caught
    assert 'head.type' in recipe_differences(model, recipe)
    model['data_preprocessor']['batch_augments'] = dict(augments=[])
    assert 'data_preprocessor.batch_augments.augments' in recipe_differences(model, recipe)
