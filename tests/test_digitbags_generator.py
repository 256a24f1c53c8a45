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


def make_megapixel(out, task='majority', seed=0):
    from tools.dataset_converters.make_digitbags import main
    main(['--preset', 'megapixel', '--task', task, '--out', str(out), '--num-train', '6',
          '--num-val', '3', '--num-test', '3', '--seed', str(seed), '--no-progress'])
    return str(out)


def test_megapixel_preset_is_deterministic(tmp_path):
    """Same seed, same bytes: every file of the tree (images of all splits, split
    lists, meta.json, the instance boxes); another seed, other images."""
    a, b = make_megapixel(tmp_path / 'a'), make_megapixel(tmp_path / 'b')
    c = make_megapixel(tmp_path / 'c', seed=1)
    files = _files(a)
    assert files == _files(b) and len(files) >= 12 + 3
    assert {'meta.json', 'train.txt', 'val.txt', 'test.txt'} <= set(files)
    assert any(f.endswith('_instances.json') for f in files)
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors and len(match) == len(files)
    images = [f for f in files if f.endswith('.png')]
    assert len(images) == 12  # 6 train, 3 val, 3 test
    _, differ, _ = filecmp.cmpfiles(a, c, images, shallow=False)
    assert len(differ) == len(images)


@pytest.mark.parametrize('task', ['majority', 'max', 'multi'])
def test_megapixel_labels_and_boxes(tmp_path, task):
    from sklearn.datasets import load_digits
    root = make_megapixel(tmp_path / task, task)
    meta = json.load(open(osp.join(root, 'meta.json')))
    assert meta['classes'] == [str(c) for c in range(10)] and meta['task'] == task
    import cv2
    uci = load_digits()
    pools = {k: set(v) for k, v in meta['pools'].items()}
    glyph_match = []
    for split in ('train', 'val', 'test'):
        inst = json.load(open(osp.join(root, f'{split}_instances.json')))
        for line in open(osp.join(root, f'{split}.txt')).read().splitlines():
            rel, text = line.split()
            info = inst[rel]
            digits = info['digits']
            assert len(digits) == 5 and set(info['uci_index']) <= pools[split]
            assert [int(uci.target[i]) for i in info['uci_index']] == digits
            majority = max(set(digits), key=digits.count)
            assert digits.count(majority) == 3 and digits[:3] == [majority] * 3
            label = [int(v) for v in text.split(',')]
            expected = {'majority': [majority], 'max': [max(digits)],
                        'multi': sorted(set(digits))}[task]
            assert label == expected == info['targets']
            image = np.asarray(Image.open(osp.join(root, rel)))
            assert image.shape == (1500, 1500)
            for (x1, y1, x2, y2), idx in zip(info['boxes'], info['uci_index']):
                assert x2 - x1 == y2 - y1 == 28
                glyph = cv2.resize((uci.images[idx] / 16).astype(np.float32), (28, 28),
                                   interpolation=cv2.INTER_LINEAR)
                glyph = (glyph.clip(0, 1) * 255).round().astype(np.uint8)
                glyph_match.append(float((image[y1:y2, x1:x2] == glyph).mean()))
    # every box holds its digit, but where a scribble was drawn over it (rare)
    assert np.mean(np.array(glyph_match) >= 0.9) >= 0.95, sorted(glyph_match)[:5]


def test_megapixel_dataset_reads_every_task(tmp_path):
    from gattn_mm.datasets import DigitBags
    for task in ('majority', 'multi'):
        root = make_megapixel(tmp_path / task, task)
        ds = DigitBags(root, split='train')
        assert ds.metainfo['classes'] == tuple(str(c) for c in range(10))
        info = ds.get_data_info(0)
        inst = json.load(open(osp.join(root, 'train_instances.json')))
        expected = inst[osp.relpath(info['img_path'], root)]['targets']
        assert list(np.atleast_1d(info['gt_label'])) == expected
        assert info['target_digit'].tolist() == expected and info['gt_bboxes'].shape == (5, 4)


def test_megapixel_flags_are_checked(tmp_path):
    from tools.dataset_converters.make_digitbags import parse_args
    with pytest.raises(SystemExit):
        parse_args(['--out', str(tmp_path), '--preset', 'megapixel', '--target', '3'])
    with pytest.raises(SystemExit):
        parse_args(['--out', str(tmp_path), '--task', 'max'])  # presence has no task


@pytest.mark.parametrize('argv,message', [
    (['--canvas', '0'], r'digit_size must be in \[8, canvas/2\], got digit_size=24, canvas=0'),
    (['--digit-size', '0'], r'digit_size must be in \[8, canvas/2\], got digit_size=0'),
    (['--preset', 'megapixel', '--digit-size', '0'], 'digit_size must be >= 8'),
    (['--num-train', '-3'], r'--num-train: must be >= 0, got -3'),
    (['--canvas', '100000'], r'--canvas: at most 8192 px, got 100000'),
    (['--target', '11'], 'target must be a digit 0-9, got 11'),
    (['--instances', '5', '2'], r'instances must satisfy 1 <= MIN <= MAX'),
])
def test_cli_refuses_bad_values_as_usage_errors(tmp_path, capsys, argv, message):
    """0 reaches the spec's checks (no silent default) and every refusal is argparse's
    clean exit 2 with the message, not a traceback."""
    import re
    from tools.dataset_converters.make_digitbags import main
    with pytest.raises(SystemExit) as exit_info:
        main(['--out', str(tmp_path / 'out'), '--no-progress', *argv])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not osp.exists(tmp_path / 'out')


def test_cli_out_must_not_be_a_file(tmp_path, capsys):
    from tools.dataset_converters.make_digitbags import main
    out = tmp_path / 'taken'
    out.write_text('x')
    with pytest.raises(SystemExit) as exit_info:
        main(['--out', str(out), '--no-progress'])
    assert exit_info.value.code == 2
    assert 'exists and is not a directory' in capsys.readouterr().err


def test_cli_zero_images_in_a_split_is_allowed(tmp_path):
    from tools.dataset_converters.make_digitbags import main
    main(['--out', str(tmp_path), '--canvas', '96', '--digit-size', '12', '--instances', '1',
          '2', '--num-train', '2', '--num-val', '0', '--num-test', '0', '--no-progress'])
    assert json.load(open(tmp_path / 'meta.json'))['num'] == dict(train=2, val=0, test=0)


def test_spec_refuses_negative_counts():
    from gattn_mm.datasets.megapixel_generator import MegapixelSpec
    for spec in (DigitBagsSpec, MegapixelSpec):
        with pytest.raises(ValueError, match='num must give each of'):
            spec(num=dict(train=-3, val=1, test=1))
        with pytest.raises(ValueError, match='num must give each of'):
            spec(num=dict(train=3))
