import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from conftest import make_tiny_digitbags
from gattn_mm.datasets.digitbags_generator import DigitBagsSpec, split_digit_pools


def _files(root):
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_same_seed_same_bytes(tmp_path, tiny_digitbags):
    again = make_tiny_digitbags(tmp_path / 'again')
    assert _files(again) == _files(tiny_digitbags)
    match, mismatch, errors = filecmp.cmpfiles(again, tiny_digitbags, _files(again),
                                               shallow=False)
    assert not mismatch and not errors and len(match) > 30


def test_other_seed_differs(tmp_path, tiny_digitbags):
    other = make_tiny_digitbags(tmp_path / 'other', seed=1)
    a = open(osp.join(other, 'train.txt')).read()
    b = open(osp.join(tiny_digitbags, 'train.txt')).read()
    ia = np.asarray(Image.open(osp.join(other, 'images/train/train_000000.png')))
    ib = np.asarray(Image.open(osp.join(tiny_digitbags, 'images/train/train_000000.png')))
    assert a != b or not np.array_equal(ia, ib)


def test_digit_pools_disjoint_and_used(tiny_digitbags):
    pools = split_digit_pools(0)
    sets = {k: set(v.tolist()) for k, v in pools.items()}
    assert not sets['train'] & sets['val'] and not sets['train'] & sets['test']
    assert not sets['val'] & sets['test']
    assert sum(len(s) for s in sets.values()) == 1797
    for split in ('train', 'val', 'test'):
        inst = json.load(open(osp.join(tiny_digitbags, f'{split}_instances.json')))
        used = {i for v in inst.values() for i in v['uci_index']}
        assert used <= sets[split]


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_balance_boxes_and_labels(tiny_digitbags, split):
    lines = open(osp.join(tiny_digitbags, f'{split}.txt')).read().split()
    paths, labels = lines[::2], [int(v) for v in lines[1::2]]
    assert sum(labels) * 2 == len(labels)  # balanced
    inst = json.load(open(osp.join(tiny_digitbags, f'{split}_instances.json')))
    for path, label in zip(paths, labels):
        img = np.asarray(Image.open(osp.join(tiny_digitbags, path)))
        assert img.shape == (128, 128) and img.dtype == np.uint8
        boxes = np.array(inst[path]['boxes'])
        assert ((boxes >= 0) & (boxes <= 128)).all()
        assert (boxes[:, 2] - boxes[:, 0] == 12).all()
        for i in range(len(boxes)):  # no two boxes overlap
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert (9 in inst[path]['digits']) == bool(label)
        assert 2 <= len(boxes) <= 3


def test_spec_validation():
    with pytest.raises(ValueError, match='instances'):
        DigitBagsSpec(instances=(5, 2))
    with pytest.raises(ValueError, match='target'):
        DigitBagsSpec(target=11)
    with pytest.raises(ValueError, match='do not fit'):
        DigitBagsSpec(canvas=64, digit_size=16, instances=(3, 30))


def test_cli(tmp_path):
    from tools.dataset_converters.make_digitbags import main
    main(['--out', str(tmp_path), '--canvas', '96', '--digit-size', '12', '--instances', '1',
          '2', '--num-train', '4', '--num-val', '2', '--num-test', '2', '--no-progress'])
    meta = json.load(open(tmp_path / 'meta.json'))
    assert meta['canvas'] == 96 and meta['num'] == dict(train=4, val=2, test=2)
    assert len(open(tmp_path / 'train.txt').read().split()) == 8
