"""Widths taken from the built modules: a config names a backbone and a reader, not
their channels; a model built so is the model with the widths written out (same
initialisation), and a width given wrong is still refused."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import gattn_mm  # noqa: F401
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def model_cfg(**given):
    """The shipped DigitBags model config (it names no channels), with ``given``
    widths written out: {part: {key: width}}."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'gattn_digitbags.py')).model
    for part, keys in given.items():
        cfg[part].update(keys)
    return cfg


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


WRITTEN_OUT = dict(neck=dict(in_channels=64),
                   head=dict(in_channels=64, instance_channels=128),
                   instance_head=dict(in_channels=128))


def test_left_out_widths_are_measured_and_the_model_is_the_same():
    shipped = model_cfg()
    assert all(shipped[part].get(key) is None
               for part, keys in WRITTEN_OUT.items() for key in keys)
    short, full = build(shipped), build(model_cfg(**WRITTEN_OUT))
    assert (short.neck.in_channels, short.head.in_channels) == (64, 64)
    assert (short.head.instance_channels, short.instance_head.in_channels) == (128, 128)
    a, b = full.state_dict(), short.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_widths_reach_a_head_that_passes_them_on_in_kwargs():
    # MultiLabelFusionHead takes instance_channels through **kwargs (FusionHead's)
    cfg = model_cfg()
    cfg.head.type, cfg.predict_from = 'MultiLabelFusionHead', 'head'
    model = build(cfg)
    assert (model.head.in_channels, model.head.instance_channels) == (64, 128)


def test_a_width_given_wrong_is_refused_naming_the_key():
    cfg = model_cfg()
    cfg.instance_head.in_channels = 32
    with pytest.raises(ValueError, match='model.instance_head.in_channels=128'):
        MODELS.build(cfg)
