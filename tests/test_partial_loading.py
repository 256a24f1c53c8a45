"""Partial loading where it is meant (``init_cfg=dict(type='Pretrained', prefix=...)``:
counts logged, a checkpoint of another architecture or a prefix that matches nothing
refused)."""
import pytest
import torch

import gattn_mm  # noqa: F401  (installs the checked PretrainedInit)
from gattn_mm.models.utils import pretrained_init
from gattn_mm.models.utils.pretrained_init import PretrainedMismatchError
from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS


def resnet(**kwargs):
    cfg = dict(type='ResNet', depth=18, base_channels=8, out_indices=(3,))
    cfg.update(kwargs)
    return cfg


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def classifier(backbone=None, num_classes=2):
    return build(dict(type='ImageClassifier', backbone=backbone or resnet(),
                      neck=dict(type='GlobalAveragePooling'),
                      head=dict(type='LinearClsHead', num_classes=num_classes,
                                in_channels=64)))


@pytest.fixture(scope='module')
def tiny_classifier_ckpt(tmp_path_factory):
    """(path, state_dict) of a tiny ResNet-18 ImageClassifier's checkpoint."""
    torch.manual_seed(0)
    state = classifier().state_dict()
    path = str(tmp_path_factory.mktemp('pretrained') / 'tiny_r18.pth')
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path, state


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(pretrained_init, 'print_log',
                        lambda msg, logger=None, level=None: lines.append((msg, level)))
    return lines


def test_pretrained_backbone_loads_all_and_logs_counts(tiny_classifier_ckpt, logged):
    path, state = tiny_classifier_ckpt
    backbone = build(resnet(init_cfg=dict(type='Pretrained', checkpoint=path,
                                          prefix='backbone')))
    backbone.init_weights()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state['backbone.' + key]), key
    total = sum(1 for k in backbone.state_dict() if not k.endswith('num_batches_tracked'))
    [(line, level)] = logged
    assert line == (f"init_cfg Pretrained {path} (prefix 'backbone.') into ResNet: loaded "
                    f'{total} of {total} tensors; missing 0, unexpected 0, shape '
                    f'mismatches 0'), line
    assert level == 20  # INFO: nothing left at random


def test_pretrained_partial_checkpoint_counts_missing(tmp_path, tiny_classifier_ckpt, logged):
    """A checkpoint without some tensors still loads the rest (that is what partial
    loading is for), with the missing ones counted and named, as a warning."""
    _, state = tiny_classifier_ckpt
    partial = {k: v for k, v in state.items() if not k.startswith('backbone.layer4.')}
    path = str(tmp_path / 'no_layer4.pth')
    torch.save({'state_dict': partial}, path)
    backbone = build(resnet(init_cfg=dict(type='Pretrained', checkpoint=path,
                                          prefix='backbone')))
    backbone.init_weights()
    [(line, level)] = logged
    missing = [k for k in backbone.state_dict()
               if k.startswith('layer4.') and not k.endswith('num_batches_tracked')]
    assert f'missing {len(missing)} (first: layer4.0.conv1.weight' in line, line
    assert 'shape mismatches 0' in line and level == 30  # WARNING


@pytest.mark.parametrize('other', [dict(base_channels=16), dict(depth=50)],
                         ids=['wider', 'deeper'])
@pytest.mark.parametrize('init_type', ['Pretrained', PretrainedInit], ids=['name', 'class'])
def test_pretrained_of_another_architecture_is_refused(tiny_classifier_ckpt, other,
                                                       init_type, logged):
    path, _ = tiny_classifier_ckpt
    backbone = build(resnet(**other, init_cfg=dict(type=init_type, checkpoint=path,
                                                   prefix='backbone')))
    with pytest.raises(PretrainedMismatchError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert path in msg and 'ResNet' in msg and err.value.checkpoint == path
    assert 'another architecture' in msg and 'shape mismatches' in msg
    assert 'layer1.0.conv1.weight (8, 64, 3, 3) vs' in msg, msg  # the first keys named
    assert not logged


def test_pretrained_prefix_matching_nothing_is_refused(tiny_classifier_ckpt):
    path, _ = tiny_classifier_ckpt
    backbone = build(resnet(init_cfg=dict(type='Pretrained', checkpoint=path,
                                          prefix='encoder')))
    with pytest.raises(PretrainedMismatchError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert path in msg and 'ResNet' in msg and "'encoder.'" in msg
    assert "its keys start with 'backbone.', 'head.'" in msg, msg


def test_pretrained_whole_classifier_into_backbone_without_prefix_is_refused(
        tiny_classifier_ckpt):
    """No prefix: the classifier's 'backbone.*' names fit none of the backbone's."""
    path, _ = tiny_classifier_ckpt
    backbone = build(resnet(init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(PretrainedMismatchError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert 'none of its tensors fits ResNet' in msg and "prefix='backbone'" in msg
    assert 'loaded 0 of' in msg and path in msg
