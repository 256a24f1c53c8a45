import numpy as np
import torch

import gattn_mm  # noqa: F401
from mmpretrain.registry import METRICS


def sample(boxes, attention_cell, digits=(9, 3, 3)):
    """Three digits (a target 9 and two 3s) in a 100 px image of 4x4 cells."""
    attention = torch.zeros(4, 4)
    attention[attention_cell] = 1
    return dict(boxes=torch.tensor(boxes, dtype=torch.float32), attention=attention,
                img_shape=(100, 100),
                gt_bboxes=np.array([[0, 0, 20, 20], [50, 50, 70, 70], [75, 75, 95, 95]]),
                gt_digits=np.array(digits), target_digit=9)


def test_instance_localization_values():
    metric = METRICS.build(dict(type='InstanceLocalization'))
    metric.process(None, [
        # holds the 9, holds a 3, clutter; attention argmax on the 9
        sample([[0, 0, 25, 25], [48, 48, 72, 72], [30, 0, 45, 15]], (0, 0)),
        # a box on half of the 9 (not held), attention on a 3
        sample([[10, 0, 30, 20]], (2, 2)),
        # no target: not in the pointing game
        sample([[75, 75, 95, 95]], (3, 3), digits=(1, 3, 3)),
    ])
    out = metric.evaluate(3)
    assert out['loc/target_recall'] == 50.0  # the 9 of image 1, not of image 2
    assert np.isclose(out['loc/instance_recall'], 300 / 9)  # 3 of 9 digits
    assert out['loc/box_precision'] == 60.0  # 3 of 5 boxes hold a digit
    assert out['loc/pointing_game'] == 50.0
    assert np.isclose(out['loc/pointing_baseline'], 100 / 3)  # one 9 in three digits
