"""What the inferencer and tools/infer.py report is what the model predicts: a
multi-label model's every predicted class (none, one or several; never one
``pred_label`` standing for all), and class names from a checkpoint's meta only when
they are a list of unique names, one per output (a string 'ab', a dict or a name
twice is refused naming the checkpoint and key)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')


def tiny_checkpoint(folder, classes, bias=None, multi_label=False):
    """(config, checkpoint) of the tiny DigitBags model (untrained; the fused head's
    logits set to ``bias`` when given), its meta naming ``classes``."""
    from mmengine.config import Config
    from mmpretrain.apis import get_model
    cfg = Config.fromfile(TINY)
    if multi_label:
        cfg.model.head.type = 'MultiLabelFusionHead'
        cfg.model.predict_from = 'head'
    config = str(folder / ('multi.py' if multi_label else 'single.py'))
    cfg.dump(config)
    torch.manual_seed(0)
    model = get_model(config)
    if bias is not None:
        with torch.no_grad():
            model.head.fc.weight.zero_()
            model.head.fc.bias.copy_(torch.tensor(bias))
    path = str(folder / ('multi.pth' if multi_label else f'{abs(hash(repr(classes)))}.pth'))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(
        classes=classes))), path)
    return config, path


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp('img') / 'bag.png'
    Image.fromarray(np.full((128, 128), 140, np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize('bias, labels', [([9., 9.], [0, 1]), ([9., -9.], [0]),
                                          ([-9., -9.], [])])
def test_infer_writes_every_class_a_multi_label_model_predicts(tmp_path, bag, bias, labels):
    from gattn_mm.apis import GattnInferencer
    from tools.infer import main as infer
    config, ckpt = tiny_checkpoint(tmp_path, ['no_9', 'has_9'], bias, multi_label=True)
    result = GattnInferencer(config, pretrained=ckpt, device='cpu')(bag)[0]
    assert result['multi_label'] and result['pred_labels'] == labels
    out = tmp_path / 'r.json'
    assert infer([config, ckpt, bag, '--out', str(out), '--device', 'cpu']) == 0
    entry = json.load(open(out))['results'][0]
    assert entry['multi_label'] is True and entry['pred_labels'] == labels
    assert entry['pred_classes'] == [['no_9', 'has_9'][v] for v in labels]
    assert len(entry['pred_scores']) == len(labels)
    assert all(s > 0.99 for s in entry['pred_scores'])
    assert 'pred_label' not in entry and 'pred_class' not in entry  # no single stand-in


def test_a_single_label_model_writes_one_label(tmp_path, bag):
    from tools.infer import main as infer
    config, ckpt = tiny_checkpoint(tmp_path, ['no_9', 'has_9'], [-3., 3.])
    out = tmp_path / 'r.json'
    assert infer([config, ckpt, bag, '--out', str(out), '--device', 'cpu']) == 0
    entry = json.load(open(out))['results'][0]
    assert entry['pred_label'] == 1 and entry['pred_class'] == 'has_9'
    assert 'pred_labels' not in entry and 'multi_label' not in entry


@pytest.mark.parametrize('classes, why', [
    ('ab', r"the string 'ab' \(it would be one class per character\)"),
    ({'0': 'a', '1': 'b'}, 'got a dict'),
    (['a', 'a'], r"got 'a' twice"),
    (['a', ''], "got '' at index 1"),
    (['a', 'b', 'c'], r'names the classes .* but the model has 2 classes'),
])
def test_checkpoint_meta_classes_are_checked(tmp_path, bag, classes, why):
    from gattn_mm.apis import GattnInferencer
    from gattn_mm.models import CheckpointMismatchError
    from tools.infer import main as infer
    config, ckpt = tiny_checkpoint(tmp_path, classes)
    with pytest.raises(CheckpointMismatchError, match=f"dataset_meta.classes.*{why}"):
        GattnInferencer(config, pretrained=ckpt, device='cpu')
    with pytest.raises(SystemExit) as err:
        infer([config, ckpt, bag, '--out', str(tmp_path / 'r.json'), '--device', 'cpu'])
    assert ckpt in str(err.value.code) and 'dataset_meta.classes' in str(err.value.code)
    assert not (tmp_path / 'r.json').exists()
    with pytest.raises(CheckpointMismatchError, match=f'the classes argument:? .*{why}'):
        GattnInferencer(config, pretrained=ckpt, device='cpu', classes=classes)
    ok = GattnInferencer(config, pretrained=ckpt, device='cpu', classes=['x', 'y'])
    assert ok.classes == ('x', 'y')
