import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('OMP_NUM_THREADS', '2')


def make_tiny_digitbags(out, seed=0, num=(16, 8, 8)):
    from gattn_mm.datasets.digitbags_generator import DigitBagsSpec, generate
    spec = DigitBagsSpec(canvas=128, digit_size=12, instances=(2, 3), target=9,
                         num=dict(train=num[0], val=num[1], test=num[2]), seed=seed)
    generate(str(out), spec, progress=False)
    return str(out)


@pytest.fixture(scope='session')
def tiny_digitbags(tmp_path_factory):
    return make_tiny_digitbags(tmp_path_factory.mktemp('digitbags'))


@pytest.fixture(scope='session')
def root():
    return ROOT
