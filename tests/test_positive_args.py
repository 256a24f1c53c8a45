"""Every positive real argument of a part (temperatures, scales, time budgets, blur
widths) refuses what is not a finite number > 0, in one error naming its config key:
zero, negatives, inf, nan, a bool (True is 1 to Python) and a string from a
hand-edited config. A value that passes is kept as a float."""
import math

import pytest

import gattn_mm  # noqa: F401
from gattn_mm.engine.hooks import TimeBudgetHook
from gattn_mm.models import InstanceSampler
from gattn_mm.models.losses import ContrastPriorLoss, EvidenceDistillLoss
from gattn_mm.models.samplers.contrast_peak_refiner import ContrastPeakRefiner
from mmpretrain.registry import MODELS
from test_models import small

BAD = [0, -1, -0.5, math.inf, math.nan, True, '1']


def fixed_attention(temperature):
    cfg = small(instance_head=dict(negative_class=None, mil_loss=dict(type='MILLoss')))
    return MODELS.build(dict(cfg, type='FixedAttentionClassifier', attention='contrast',
                             temperature=temperature))


PARTS = {
    'ContrastPriorLoss.temperature':
        (lambda v: ContrastPriorLoss(temperature=v), lambda p: p.temperature),
    'EvidenceDistillLoss.temperature':
        (lambda v: EvidenceDistillLoss(temperature=v), lambda p: p.temperature),
    'FixedAttentionClassifier.temperature': (fixed_attention, lambda p: p.temperature),
    'TimeBudgetHook.seconds': (lambda v: TimeBudgetHook(seconds=v), lambda p: p.seconds),
    'sampler.box_scale':
        (lambda v: InstanceSampler(crop_size=4, box_scale=v), lambda p: p.box_scale),
    'refiner.sigma': (lambda v: ContrastPeakRefiner(sigma=v), lambda p: p.sigma),
}


@pytest.mark.parametrize('key', list(PARTS))
@pytest.mark.parametrize('value', BAD, ids=repr)
def test_a_bad_positive_number_is_refused_by_name(key, value):
    build, _ = PARTS[key]
    with pytest.raises(ValueError, match=rf'{key}=.* must be a positive finite number'):
        build(value)


@pytest.mark.parametrize('key', list(PARTS))
def test_a_positive_number_is_kept_as_a_float(key):
    build, read = PARTS[key]
    value = read(build(2))
    assert value == 2.0 and type(value) is float


@pytest.mark.parametrize('kwargs, key', [
    (dict(window=math.inf), 'refiner.window'), (dict(window=True), 'refiner.window'),
    (dict(window='2'), 'refiner.window'), (dict(reach=True), 'refiner.reach'),
    (dict(reach=math.nan), 'refiner.reach'), (dict(reach=-0.1), 'refiner.reach'),
    (dict(reach='0'), 'refiner.reach')])
def test_refiner_window_and_reach_are_numbers_in_range(kwargs, key):
    with pytest.raises(ValueError, match=key):
        ContrastPeakRefiner(**kwargs)
    assert ContrastPeakRefiner(reach=0).reach == 0.0  # the box left where it is
