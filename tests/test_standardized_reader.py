"""StandardizedReader: each crop read standardised on its own, so an image's colour
cast (stain, illumination) cannot tell the reader the image's label."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import gattn_mm  # noqa: F401  (registers the parts)
from mmpretrain.registry import MODELS

CPU_CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs',
                      'gattn_fungi_cpu.py')
BACKBONE = dict(type='ResNet', depth=18, base_channels=8, out_indices=(3,),
                zero_init_residual=False, init_cfg=[])


def reader(**kwargs):
    return MODELS.build(dict(type='StandardizedReader', backbone=BACKBONE, **kwargs)).eval()


def test_each_crop_and_channel_is_standardised_on_its_own():
    torch.manual_seed(0)
    crops = torch.randn(5, 3, 16, 12) * torch.tensor([0.5, 2., 3.]).view(1, 3, 1, 1) \
        + torch.arange(5.).view(5, 1, 1, 1)
    out = reader().standardize(crops)
    assert out.shape == crops.shape
    torch.testing.assert_close(out.mean(dim=(2, 3)), torch.zeros(5, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3)), torch.ones(5, 3), atol=1e-5, rtol=0)


def test_a_colour_cast_of_one_crop_does_not_change_what_is_read():
    """Per-channel gain and offset (a stain or white-balance change) on one crop of a
    batch: the same features for it, and the other crops untouched."""
    torch.manual_seed(1)
    crops = torch.randn(4, 3, 32, 32)
    cast = crops.clone()
    cast[2] = cast[2] * torch.tensor([1.3, 0.7, 1.1]).view(3, 1, 1) + \
        torch.tensor([0.4, -0.2, 0.9]).view(3, 1, 1)
    model = reader()
    with torch.no_grad():
        a, b = model(crops)[0], model(cast)[0]
        plain = MODELS.build(BACKBONE)
        plain.eval()  # (mmpretrain's ResNet.train returns None: not chained)
        plain.load_state_dict(model.backbone.state_dict())
        c, d = plain(crops)[0], plain(cast)[0]
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(c[2], d[2], atol=1e-3)  # the backbone alone sees the cast


def test_a_flat_crop_is_not_blown_up_to_its_noise():
    flat = torch.full((1, 3, 8, 8), 0.3) + 1e-4 * torch.randn(1, 3, 8, 8)
    out = reader(min_std=0.05).standardize(flat)
    assert out.abs().max() < 0.02  # noise of 1e-4 over a floor of 0.05


@pytest.mark.parametrize('bad', [0, -1., float('nan'), float('inf'), '0.1', None, True])
def test_min_std_must_be_a_positive_finite_number(bad):
    with pytest.raises(ValueError, match='reader.min_std=.* must be a positive finite'):
        reader(min_std=bad)


def test_the_cpu_microscopy_config_reads_standardised_crops():
    cfg = Config.fromfile(CPU_CONFIG)
    model = MODELS.build(cfg.model)
    assert type(model.reader).__name__ == 'StandardizedReader'
    assert model.instance_head.in_channels == 128  # widths probed through the wrapper
