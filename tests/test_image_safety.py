"""Images are untrusted: a pixel budget checked before decoding, stacks refused,
scientific intensities read by stated rules, bad files named and skipped by the tools."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from gattn_mm.datasets.transforms import ImageReadError, LoadMicroscopyImage, read_image
from gattn_mm.datasets.transforms.loading import to_rgb_uint8

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tiff_bomb(path, side=40000):
    """A 1.6 GB (apparent) TIFF header whose pixels are a sparse hole on disk."""
    tifffile.imwrite(path, shape=(side, side), dtype=np.uint8)
    return str(path)


def test_tiff_bomb_is_refused_from_its_header(tmp_path):
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageReadError, match=r'bomb.tif: 40000 x 40000 .* over the limit'):
        read_image(tiff_bomb(tmp_path / 'bomb.tif'))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KB
    img = np.random.randint(0, 255, (20, 30), np.uint8)
    tifffile.imwrite(tmp_path / 'small.tif', img)
    with pytest.raises(ImageReadError, match='over the limit of 100'):
        LoadMicroscopyImage(max_pixels=100)(dict(img_path=str(tmp_path / 'small.tif')))
    assert read_image(str(tmp_path / 'small.tif')).shape == (20, 30, 3)


def test_png_over_the_budget_is_refused_before_decoding(tmp_path):
    from PIL import Image
    Image.new('L', (300, 200)).save(tmp_path / 'big.png')
    with pytest.raises(ImageReadError, match='300 x 200 = 60,000 pixels'):
        read_image(str(tmp_path / 'big.png'), max_pixels=50_000)


def test_tiff_channels_and_bytes_are_budgeted_from_the_header(tmp_path, monkeypatch):
    """Many samples per pixel, or wide samples, are refused before anything is decoded."""
    def decoded(*args, **kwargs):
        raise AssertionError('decoded')
    many = tmp_path / 'many.tif'  # 4 GB declared, a few KB on disk (sparse)
    tifffile.imwrite(many, shape=(2000, 2000, 1000), dtype=np.uint8,
                     photometric='minisblack', planarconfig='contig')
    monkeypatch.setattr(tifffile.TiffPageSeries, 'asarray', decoded)
    with pytest.raises(ImageReadError, match=r'many.tif: expected a gray, .* got shape '
                                             r'\(2000, 2000, 1000\) \(1000 samples per pixel'):
        read_image(str(many))
    tifffile.imwrite(tmp_path / 'f64.tif', np.zeros((100, 100, 3)), photometric='rgb')
    with pytest.raises(ImageReadError, match=r'f64.tif: \(100, 100, 3\) of float64 decodes '
                                             r'to 240,000 bytes, over the limit of 40,000'):
        read_image(str(tmp_path / 'f64.tif'), max_pixels=100 * 100)
    monkeypatch.undo()
    tifffile.imwrite(tmp_path / 'rgba.tif', np.zeros((100, 100, 4), np.uint8),
                     photometric='rgb', extrasamples=['unassalpha'])  # 4 bytes a pixel: fits
    assert read_image(str(tmp_path / 'rgba.tif'), max_pixels=100 * 100).shape == (100, 100, 3)
    tifffile.imwrite(tmp_path / 'u16.tif', np.zeros((100, 100, 2), np.uint16),
                     photometric='minisblack', extrasamples=['unassalpha'])
    assert read_image(str(tmp_path / 'u16.tif'), max_pixels=100 * 100).shape == (100, 100, 3)


@pytest.mark.parametrize('kind', ['pages', 'imagej_z', 'ome_z'])
def test_tiff_stacks_are_refused_not_read_as_colour(tmp_path, kind):
    stack = np.random.randint(0, 255, (3, 20, 30), np.uint8)
    path = tmp_path / f'{kind}.tif'
    if kind == 'pages':
        tifffile.imwrite(path, stack, photometric='minisblack')
    elif kind == 'imagej_z':
        tifffile.imwrite(path, stack, imagej=True, metadata={'axes': 'ZYX'})
    else:
        tifffile.imwrite(path, stack, photometric='minisblack', metadata={'axes': 'ZYX'})
    with pytest.raises(ImageReadError, match=f'{kind}.tif: a TIFF stack'):
        read_image(str(path))


def test_single_page_rgb_tiffs_are_read(tmp_path):
    rgb = np.random.randint(0, 255, (20, 30, 3), np.uint8)
    tifffile.imwrite(tmp_path / 'rgb.tif', rgb, photometric='rgb')
    tifffile.imwrite(tmp_path / 'planar.tif', rgb.transpose(2, 0, 1), photometric='rgb',
                     planarconfig='separate')
    rgba = np.concatenate([rgb, np.full((20, 30, 1), 7, np.uint8)], -1)
    tifffile.imwrite(tmp_path / 'rgba.tif', rgba, photometric='rgb', extrasamples=['unassalpha'])
    for name in ('rgb', 'planar', 'rgba'):
        assert np.array_equal(read_image(str(tmp_path / f'{name}.tif')), rgb), name


def test_float_intensities(tmp_path):
    raw = np.linspace(0, 4000, 20 * 30, dtype=np.float32).reshape(20, 30)  # raw counts
    tifffile.imwrite(tmp_path / 'raw.tif', raw)
    img = read_image(str(tmp_path / 'raw.tif'))[..., 0]
    assert img.min() == 0 and img.max() == 255  # the image's own range, not all white
    assert abs(float(img.mean()) - 127.5) < 1
    unit = np.linspace(0, 1, 600, dtype=np.float64).reshape(20, 30)
    assert np.array_equal(to_rgb_uint8(unit)[..., 0], (unit * 255).round().astype(np.uint8))
    api = np.linspace(0, 255, 600).reshape(20, 30)  # float64 in 0-255 via the API
    assert np.abs(to_rgb_uint8(api)[..., 0].astype(int) - api.round()).max() <= 1
    for bad in (np.nan, np.inf):
        raw[3, 4] = bad
        tifffile.imwrite(tmp_path / 'nan.tif', raw)
        with pytest.raises(ImageReadError, match='nan.tif: .*NaN or infinite'):
            read_image(str(tmp_path / 'nan.tif'))
    assert np.array_equal(to_rgb_uint8(np.full((4, 4), 1000, np.uint16))[..., 0],
                          np.full((4, 4), 4, np.uint8))  # uint16: its dtype range (/257)


def test_infer_keeps_the_good_results_past_a_bomb_and_checks_arguments(
        tmp_path, tiny_checkpoint, tiny_digitbags):
    config, ckpt = tiny_checkpoint
    folder = tmp_path / 'imgs'
    folder.mkdir()
    src = osp.join(tiny_digitbags, 'images', 'test')
    for name in ('a.png', 'c.png'):
        (folder / name).write_bytes(open(osp.join(src, 'test_000000.png'), 'rb').read())
    tiff_bomb(folder / 'b.tif')
    out = tmp_path / 'results.json'
    run = lambda *a: subprocess.run([sys.executable, 'tools/infer.py', config, ckpt, *a],  # noqa
                                    cwd=ROOT, capture_output=True, text=True, timeout=300)
    proc = run(str(folder), '--out', str(out), '--batch-size', '1', '--device', 'cpu')
    assert proc.returncode == 1, proc.stderr[-3000:]
    results = json.load(open(out))
    assert [osp.basename(r['image']) for r in results['results']] == ['a.png', 'c.png']
    # a TIFF without a pyramid: no native config reads it either (no advice to use one)
    assert 'over the limit' in results['failures'][0]['error']
    assert 'native-resolution' not in results['failures'][0]['error']
    for bad, msg in ((['--batch-size', '0'], '--batch-size must be >= 1'),
                     (['--topk', '-1'], '--topk must be >= 1'),
                     (['--out', str(tmp_path / 'no' / 'r.json')], 'not a writable file path')):
        proc = run(str(folder), *bad)
        assert proc.returncode == 2 and msg in proc.stderr, proc.stderr[-2000:]
    (tmp_path / 'empty').mkdir()
    proc = run(str(tmp_path / 'empty'), '--out', str(out))
    assert proc.returncode != 0 and 'no images in the folder' in proc.stderr


def test_visualize_goes_past_bad_images_and_never_overwrites(tmp_path, tiny_checkpoint,
                                                             tiny_digitbags):
    config, ckpt = tiny_checkpoint
    folder = tmp_path / 'imgs'
    folder.mkdir()
    png = open(osp.join(tiny_digitbags, 'images', 'test', 'test_000001.png'), 'rb').read()
    (folder / 'x.png').write_bytes(png)
    (folder / 'a_broken.png').write_bytes(png[:len(png) // 3])
    from PIL import Image
    Image.open(folder / 'x.png').save(folder / 'x.tif')
    proc = subprocess.run([sys.executable, 'tools/visualize_attention.py', config, ckpt,
                           str(folder), '--out-dir', str(tmp_path / 'vis'), '--device', 'cpu'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'a_broken.png' in proc.stderr
    assert sorted(os.listdir(tmp_path / 'vis')) == ['x.png.png', 'x.tif.png']
