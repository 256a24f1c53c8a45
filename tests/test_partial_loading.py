"""Partial loading where it is meant (``init_cfg=dict(type='Pretrained', prefix=...)``
inside gattn-mm's runtime: counts logged, a checkpoint of another architecture or a
prefix that matches nothing refused) and exact loading for every model the tools load
(a plain ``ImageClassifier`` baseline given a gattn checkpoint is refused)."""
import glob
import os.path as osp

import pytest
import torch

import gattn_mm  # noqa: F401
from gattn_mm.models import CheckpointMismatchError
from gattn_mm.runtime import exact_checkpoints, pretrained, safe_checkpoints
from gattn_mm.runtime.pretrained import PretrainedMismatchError
from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
GLOBAL_ONLY = osp.join(ROOT, 'configs', 'baselines', 'digitbags_global_only.py')
GATTN_CKPT = glob.glob(osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_*.pth'))[0]


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
    """The lines the checked Pretrained logs, inside gattn-mm's runtime (as the tools)."""
    lines = []
    monkeypatch.setattr(pretrained, 'print_log',
                        lambda msg, logger=None, level=None: lines.append((msg, level)))
    with safe_checkpoints():
        yield lines


@pytest.fixture
def runtime():
    with safe_checkpoints():
        yield


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


def test_pretrained_prefix_matching_nothing_is_refused(tiny_classifier_ckpt, runtime):
    path, _ = tiny_classifier_ckpt
    backbone = build(resnet(init_cfg=dict(type='Pretrained', checkpoint=path,
                                          prefix='encoder')))
    with pytest.raises(PretrainedMismatchError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert path in msg and 'ResNet' in msg and "'encoder.'" in msg
    assert "its keys start with 'backbone.', 'head.'" in msg, msg


def test_pretrained_whole_classifier_into_backbone_without_prefix_is_refused(
        tiny_classifier_ckpt, runtime):
    """No prefix: the classifier's 'backbone.*' names fit none of the backbone's."""
    path, _ = tiny_classifier_ckpt
    backbone = build(resnet(init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(PretrainedMismatchError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert 'none of its tensors fits ResNet' in msg and "prefix='backbone'" in msg
    assert 'loaded 0 of' in msg and path in msg


def test_pretrained_refusal_through_a_tool_names_the_init_checkpoint():
    """tools/train.py wraps training in checkpoint_errors_exit(load_from): an init_cfg
    refusal names its own file, not load_from (None)."""
    from gattn_mm.apis.cli import checkpoint_errors_exit
    with pytest.raises(SystemExit) as err:
        with checkpoint_errors_exit(None):
            raise PretrainedMismatchError('refusing init_cfg Pretrained r50.pth: ...',
                                          'r50.pth')
    assert str(err.value) == 'error: refusing init_cfg Pretrained r50.pth: ...'


def test_the_tools_runtime_checks_init_cfg_pretrained(tiny_classifier_ckpt):
    """Where the tools load (checkpoint_errors_exit, i.e. gattn-mm's runtime), both
    ``type='Pretrained'`` and ``type=PretrainedInit`` of another architecture end with
    one line naming the file; mmengine's ``PretrainedInit`` is its own again after."""
    from gattn_mm.apis.cli import checkpoint_errors_exit
    path, _ = tiny_classifier_ckpt
    upstream = PretrainedInit.__call__
    for init_type in ('Pretrained', PretrainedInit):
        backbone = build(resnet(depth=50, init_cfg=dict(type=init_type, checkpoint=path,
                                                        prefix='backbone')))
        with pytest.raises(SystemExit) as err:
            with checkpoint_errors_exit(None):
                backbone.init_weights()
        assert str(err.value).startswith(f'error: refusing init_cfg Pretrained {path} '), err
        assert 'another architecture' in str(err.value)
    assert PretrainedInit.__call__ is upstream


def test_exact_checkpoints_for_a_plain_image_classifier(tmp_path, tiny_classifier_ckpt):
    path, state = tiny_classifier_ckpt
    model = classifier()
    with exact_checkpoints():
        load_checkpoint(model, path, map_location='cpu', logger='silent')  # its own: fine
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    other = str(tmp_path / 'three_classes.pth')
    torch.save({'state_dict': classifier(num_classes=3).state_dict()}, other)
    shapes = r'2 of another shape.*head\.fc\.weight \(3, 64\) vs \(2, 64\)'
    with pytest.raises(CheckpointMismatchError, match=shapes):
        with exact_checkpoints():
            load_checkpoint(classifier(), other, map_location='cpu', logger='silent')
    # outside the context mmpretrain's own API keeps upstream (non-strict) loading
    load_checkpoint(classifier(), other, map_location='cpu', logger='silent')


def test_test_tool_refuses_gattn_checkpoint_for_global_only_baseline(tmp_path,
                                                                     tiny_digitbags):
    from tools.test import main
    opts = [f'test_dataloader.dataset.data_root={tiny_digitbags}',
            'test_dataloader.num_workers=0', 'test_dataloader.batch_size=4']
    with pytest.raises(SystemExit) as err:
        main([GLOBAL_ONLY, GATTN_CKPT, '--work-dir', str(tmp_path), '--cfg-options', *opts])
    msg = str(err.value)
    assert msg.startswith(f'error: checkpoint {GATTN_CKPT}: the checkpoint does not hold '
                          f"this model's weights"), msg
    assert 'unexpected (' in msg, msg  # the first keys are listed


def test_test_tool_loads_a_matching_baseline_checkpoint(tmp_path, tiny_digitbags):
    """Exact loading does not refuse the baseline's own checkpoint."""
    from mmengine.config import Config
    from tools.test import main
    cfg = Config.fromfile(GLOBAL_ONLY)
    model = build(cfg.model)
    ckpt = str(tmp_path / 'global_only.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    opts = [f'test_dataloader.dataset.data_root={tiny_digitbags}',
            'test_dataloader.num_workers=0', 'test_dataloader.batch_size=8']
    metrics = main([GLOBAL_ONLY, ckpt, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *opts])
    assert 'accuracy/top1' in metrics


def test_inferencer_refuses_gattn_checkpoint_for_a_baseline():
    from gattn_mm.apis import GattnInferencer
    with pytest.raises(CheckpointMismatchError, match='unexpected'):
        GattnInferencer(GLOBAL_ONLY, pretrained=GATTN_CKPT, device='cpu')
