"""CanvasDataPreprocessor gives ClsDataPreprocessor's batch bit for bit (it only
writes it faster), labels and batch augments included."""
import os.path as osp

import numpy as np
import pytest
import torch

import gattn_mm  # noqa: F401
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def pair(**kwargs):
    fast = MODELS.build(dict(type='CanvasDataPreprocessor', **kwargs))
    reference = ClsDataPreprocessor(**kwargs)
    return fast, reference


def batch(shapes, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [(torch.rand(s, generator=g) * 255).to(dtype) for s in shapes]
    samples = [DataSample().set_gt_label(i % 3) for i in range(len(shapes))]
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('kwargs', [
    dict(mean=[127.5] * 3, std=[63.75] * 3, to_rgb=True, num_classes=3),
    dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=False),
    dict(to_rgb=True),  # no normalisation: floats of the flipped pixels
])
@pytest.mark.parametrize('dtype', [torch.uint8, torch.float64])
def test_same_batch_as_mmpretrain(kwargs, dtype):
    fast, reference = pair(**kwargs)
    data = batch([(3, 37, 53)] * 4, dtype)
    out, ref = fast(data, True), reference(data, True)
    assert out['inputs'].dtype == torch.float32
    assert torch.equal(out['inputs'], ref['inputs'])
    assert [s.gt_label.tolist() for s in out['data_samples']] == \
        [s.gt_label.tolist() for s in ref['data_samples']]
    # the flags it lends to its parent are back
    assert fast.to_rgb == kwargs.get('to_rgb', False)
    assert fast._enable_normalize == ('mean' in kwargs)
    # and a second call gives the same (nothing normalised twice)
    assert torch.equal(fast(data, False)['inputs'], ref['inputs'])


def test_flip_only_three_channels_and_fallbacks():
    fast, reference = pair(mean=[0.5], std=[2.0], to_rgb=True)
    one = batch([(1, 8, 8)] * 2)  # gray: no flip, as mmpretrain
    assert torch.equal(fast(one)['inputs'], reference(one)['inputs'])
    fast, reference = pair(mean=[1.] * 3, std=[3.] * 3, to_rgb=True)
    mixed = batch([(3, 8, 8), (3, 6, 10)])  # sizes differ: mmpretrain pads them
    assert torch.equal(fast(mixed)['inputs'], reference(mixed)['inputs'])
    same = batch([(3, 8, 8)] * 2)
    stacked = dict(inputs=torch.stack(same['inputs']))
    assert torch.equal(fast(stacked)['inputs'], reference(stacked)['inputs'])
    fast, reference = pair(mean=[1., 2., 3.], std=[3.] * 3, to_rgb=True)
    gray = batch([(1, 8, 8)] * 2)  # a 3-channel mean broadcasts gray to 3 channels
    out = fast(gray)['inputs']
    assert out.shape == (2, 3, 8, 8) and torch.equal(out, reference(gray)['inputs'])
    fast.double(), reference.double()  # a float64 mean gives float64, as mmpretrain
    out, ref = fast(same)['inputs'], reference(same)['inputs']
    assert out.dtype == ref.dtype == torch.float64 and torch.equal(out, ref)
    fast, reference = pair(mean=[1.] * 3, std=[3.] * 3, pad_size_divisor=4)
    odd = batch([(3, 6, 10)] * 2)  # needs padding to 8 x 12: mmpretrain's path
    out = fast(odd)['inputs']
    assert out.shape == (2, 3, 8, 12) and torch.equal(out, reference(odd)['inputs'])


def test_batch_augments_still_mix():
    kwargs = dict(mean=[127.5] * 3, std=[63.75] * 3, num_classes=3,
                  batch_augments=dict(augments=[dict(type='Mixup', alpha=1.)]))
    fast, reference = pair(**kwargs)
    data = batch([(3, 16, 16)] * 4)
    torch.manual_seed(0), np.random.seed(0)
    out = fast(data, True)
    torch.manual_seed(0), np.random.seed(0)
    ref = reference(data, True)
    assert torch.equal(out['inputs'], ref['inputs'])
    assert all(torch.equal(a.gt_score, b.gt_score)
               for a, b in zip(out['data_samples'], ref['data_samples']))
    assert not torch.equal(out['inputs'], fast(data, False)['inputs'])  # mixed


def test_shipped_canvas_configs_use_it():
    from mmengine.config import Config
    for name in ('gattn_digitbags', 'gattn_megapixel'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', f'{name}.py'))
        assert cfg.model.data_preprocessor.type == 'CanvasDataPreprocessor'


@pytest.mark.parametrize('mean,std,error', [
    ([1, 2], [1, 2], 'mean and std of 1 or 3 values'),
    ([0, 0, 0], [0, 0, 0], 'every std > 0'),
    ([0, 0, 0], None, 'lists of numbers'),
])
def test_a_gattn_model_refuses_a_normalisation_that_cannot_work(mean, std, error):
    """Checked when the model is built, not as a tensor-size error or NaN predictions
    at the first batch."""
    from mmengine.config import Config
    model = Config.fromfile(osp.join(ROOT, 'configs', 'gattn_digitbags.py')).model
    model.data_preprocessor.update(mean=mean, std=std)
    with pytest.raises(ValueError, match=error):
        MODELS.build(model)
