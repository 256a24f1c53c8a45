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


def model_cfg(**drop):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'gattn_digitbags.py')).model
    for part, keys in drop.items():
        for key in keys:
            cfg[part].pop(key)
    return cfg


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_left_out_widths_are_measured_and_the_model_is_the_same():
    full = build(model_cfg())
    short = build(model_cfg(neck=['in_channels'], head=['in_channels', 'instance_channels'],
                            instance_head=['in_channels']))
    assert (short.neck.in_channels, short.head.in_channels) == (64, 64)
    assert (short.head.instance_channels, short.instance_head.in_channels) == (128, 128)
    a, b = full.state_dict(), short.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_width_given_wrong_is_refused_naming_the_key():
    cfg = model_cfg()
    cfg.instance_head.in_channels = 32
    with pytest.raises(ValueError, match='model.instance_head.in_channels=128'):
        MODELS.build(cfg)
