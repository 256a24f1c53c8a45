"""Physical scale and tissue on slides: the pixel size read from a slide's metadata
(OpenSlide mpp, an Aperio MPP, TIFF resolution tags), boxes given in µm placed at that
size in level-0 pixels, and the tissue mask keeping every box off the glass: on a
synthetic pyramidal slide with its pixel size set and on the real CMU SVS (0.499
µm/px; skipped without `make real-data`)."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import tifffile
import torch

import gattn_mm  # noqa: F401
from gattn_mm.datasets.slides import SlideError, open_slide
from gattn_mm.datasets.slides.pixel_size import ome_mpp, openslide_mpp, resolution_mpp
from gattn_mm.models.samplers.instance_sampler import InstanceSampler
from gattn_mm.models.utils import Selection
from gattn_mm.utils.tissue import tissue_mask
from real_files import present, real_file

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NATIVE_CFG = osp.join(ROOT, 'configs', 'gattn_digitbags_native.py')
CKPT = sorted(glob.glob(osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_*.pth')))[-1]
SIDE_Y, SIDE_X = 3072, 2048
MPP = (0.5, 0.25)  # (y, x) µm per pixel: not square, so that the axes are told apart
TISSUE = ((2300, 600), (500, 420))  # ellipse: centre (y, x), radii (y, x) in level-0 px
BOX_UM = 100.0


def in_tissue(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    (cy, cx), (ry, rx) = TISSUE
    return ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1


def draw_level(h: int, w: int) -> np.ndarray:
    """The slide at (h, w): glass (bright, a little noise) with an H&E-like ellipse of
    tissue (pink with purple dots)."""
    rng = np.random.default_rng(h)
    ys, xs = np.mgrid[0:h, 0:w]
    ys, xs = (ys + 0.5) * SIDE_Y / h, (xs + 0.5) * SIDE_X / w
    image = np.clip(rng.normal(238, 3, (h, w, 3)), 0, 255)
    tissue = in_tissue(ys, xs)
    nuclei = (np.sin(ys / 9) * np.sin(xs / 7)) > 0.6
    image[tissue] = (205, 130, 180)
    image[tissue & nuclei] = (110, 60, 150)
    return image.astype(np.uint8)


def write_slide(path: str, resolution: bool = True, ome: dict = None) -> str:
    """A tiled pyramidal TIFF (levels 1, 1/2, 1/4, 1/8 in SubIFDs), its pixel size in
    the resolution tags (centimetre) when ``resolution``; an OME-TIFF with the OME
    ``Pixels`` attributes ``ome`` (e.g. PhysicalSizeX) when given."""
    levels = [draw_level(SIDE_Y // d, SIDE_X // d) for d in (1, 2, 4, 8)]
    options = dict(resolution=(1e4 / MPP[1], 1e4 / MPP[0]), resolutionunit='CENTIMETER') \
        if resolution else {}
    if ome is not None:
        options.update(metadata=dict(axes='YXS', **ome))
    with tifffile.TiffWriter(path) as tif:
        tif.write(levels[0], tile=(256, 256), subifds=len(levels) - 1, photometric='rgb',
                  compression='zlib', **options)
        for level in levels[1:]:
            tif.write(level, tile=(256, 256), subfiletype=1, photometric='rgb',
                      compression='zlib')
    return path


@pytest.fixture(scope='module')
def slide_path(tmp_path_factory):
    return write_slide(str(tmp_path_factory.mktemp('slide') / 'tissue.tif'))


def um_config(tmp_path, tissue: bool = True) -> str:
    """The published DigitBags weights' native config with boxes of BOX_UM µm."""
    path = tmp_path / f'um_{tissue}.py'
    path.write_text(f"_base_ = [{NATIVE_CFG!r}]\nmodel = dict(sampler=dict(box_scale=None, "
                    f"box_size_um={BOX_UM}, tissue_mask={tissue}))\n")
    return str(path)


def run_infer(tmp_path, config, images, *extra):
    from tools import infer
    out = tmp_path / 'results.json'
    code = infer.main([config, CKPT, *images, '--out', str(out), '--device', 'cpu', *extra])
    return code, json.loads(out.read_text())


def tissue_share(box, mask: np.ndarray, scale) -> float:
    """The share of tissue pixels of ``mask`` (at ``scale`` (sy, sx) of level 0) in a
    level-0 box."""
    x1, y1, x2, y2 = box
    sy, sx = scale
    part = mask[int(y1 * sy):max(int(y1 * sy) + 1, int(y2 * sy)),
                int(x1 * sx):max(int(x1 * sx) + 1, int(x2 * sx))]
    return float(part.mean())


# ------------------------------------------------------------------- the pixel size

def test_pixel_size_from_tiff_resolution_tags(slide_path, tmp_path):
    slide = open_slide(slide_path, 1 << 26)
    assert slide.pixel_size() == pytest.approx(MPP)
    bare = open_slide(write_slide(str(tmp_path / 'bare.tif'), resolution=False), 1 << 26)
    with pytest.raises(SlideError, match=r'bare\.tif: no pixel size'):
        bare.pixel_size()


@pytest.mark.parametrize('ome, expected', [
    (dict(PhysicalSizeX=MPP[1], PhysicalSizeY=MPP[0]), MPP),  # µm by default
    (dict(PhysicalSizeX=MPP[1] * 1e3, PhysicalSizeXUnit='nm', PhysicalSizeY=MPP[0] * 1e3,
          PhysicalSizeYUnit='nm'), MPP)])
def test_pixel_size_from_ome_xml(tmp_path, ome, expected):
    slide = open_slide(write_slide(str(tmp_path / 'ome.ome.tif'), resolution=False,
                                   ome=ome), 1 << 26)
    assert slide.pixel_size() == pytest.approx(expected)


def test_ome_xml_without_a_usable_physical_size_says_why():
    assert ome_mpp('<OME><Image><Pixels PhysicalSizeX="0.3"/></Image></OME>') == \
        (None, 'the OME-XML Pixels element has no PhysicalSizeY')
    assert 'furlong' in ome_mpp('<OME><Pixels PhysicalSizeX="1" PhysicalSizeY="1" '
                                'PhysicalSizeYUnit="furlong"/></OME>')[1]
    assert 'not a number' in ome_mpp('<OME><Pixels PhysicalSizeX="x" '
                                     'PhysicalSizeY="1"/></OME>')[1]
    assert 'does not parse' in ome_mpp('<OME><Pixels')[1]
    assert 'outside' in ome_mpp('<OME><Pixels PhysicalSizeX="0.3" PhysicalSizeY="0.3" '
                                'PhysicalSizeXUnit="m" PhysicalSizeYUnit="m"/></OME>')[1]


def test_pixel_size_rules_of_tags_and_openslide_properties():
    assert resolution_mpp((40000, 1), (20000, 1), 3)[0] == pytest.approx((0.5, 0.25))
    assert resolution_mpp(50800, 50800, 'inch')[0] == pytest.approx((0.5, 0.5))
    assert resolution_mpp(4000, 4000, None)[0] == pytest.approx((6.35, 6.35))  # inch
    none, why = resolution_mpp(1, 1, 1)
    assert none is None and 'NONE' in why
    none, why = resolution_mpp((72, 1), (72, 1), 2)  # 72 dpi: a writer's default
    assert none is None and 'outside' in why
    none, why = resolution_mpp((1, 0), (1, 0), 3)
    assert none is None
    props = {'openslide.mpp-x': '0.2525', 'openslide.mpp-y': '0.2526'}
    assert openslide_mpp(props) == ((0.2526, 0.2525), 'openslide.mpp-x/y')
    assert openslide_mpp({'openslide.mpp-x': 'nan', 'openslide.mpp-y': '1'})[0] is None
    assert openslide_mpp({})[0] is None


def test_pixel_size_of_the_cmu_svs():
    pytest.importorskip('openslide')
    if not present('cmu_small_region.svs'):
        pytest.skip('cmu_small_region.svs is not in data/real: run `make real-data`')
    from gattn_mm.datasets.slides.pixel_size import tiff_mpp
    path = real_file('cmu_small_region.svs')
    assert open_slide(path, 1 << 26).pixel_size() == pytest.approx((0.499, 0.499))
    with tifffile.TiffFile(path) as tif:  # the Aperio description, read without OpenSlide
        assert tiff_mpp(tif.pages[0]) == ((0.499, 0.499), 'the Aperio description MPP')


# ------------------------------------------------------------------- the sampler

def test_sampler_arguments_and_the_native_path_are_checked():
    with pytest.raises(ValueError, match='box_size .* or box_scale'):
        InstanceSampler(box_size=32, box_size_um=10.)
    for bad in (0, -1., float('nan'), 'ab', (1., 2., 3.), True):
        with pytest.raises(ValueError, match='sampler.box_size_um'):
            InstanceSampler(box_size_um=bad)
    for bad in ('yes', 1, [True], None):
        with pytest.raises(ValueError, match='sampler.tissue_mask'):
            InstanceSampler(tissue_mask=bad)
    # a canvas model (images resized onto one canvas) knows no pixel size or tissue
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'gattn_digitbags.py'))
    for option in (dict(box_size_um=10.), dict(tissue_mask=True)):
        cfg.model.sampler.update(box_size=None, box_scale=None, **option)
        model = MODELS.build(cfg.model).eval()
        with torch.no_grad(), pytest.raises((ValueError, OSError),
                                            match=r'native path|pixel size'):
            data = model.data_preprocessor(dict(
                inputs=[torch.zeros(3, 512, 512, dtype=torch.uint8)],
                data_samples=[DataSample()]))
            model(**data, mode='predict')
        cfg.model.sampler.pop(next(iter(option)))


def test_instances_on_glass_take_the_place_of_instances_on_tissue():
    tissue = torch.zeros(1, 4, 4, dtype=torch.bool)
    tissue[0, 0, :2] = True  # cells (0, 0) and (0, 1)
    centres = torch.tensor([[[0.5, 0.5], [3.5, 3.5], [0.5, 1.5], [2.5, 0.5]]])
    selection = Selection(centres=centres, scores=torch.tensor([[.4, .3, .2, .1]]),
                          weights=torch.tensor([[.4, .3, .2, .1]]),
                          index=torch.tensor([[0, 15, 1, 8]]))
    moved = InstanceSampler.onto_tissue(selection, tissue)
    assert moved.centres.tolist() == [[[0.5, 0.5], [0.5, 0.5], [0.5, 1.5], [0.5, 1.5]]]
    assert moved.index.tolist() == [[0, 0, 1, 1]]
    assert moved.weights.sum().item() == pytest.approx(1.0)
    nothing = InstanceSampler.onto_tissue(selection, torch.zeros_like(tissue))
    assert nothing.centres.tolist() == centres.tolist()  # no tissue: kept


def test_tissue_mask_is_otsu_and_keeps_a_field_of_only_tissue():
    image = draw_level(SIDE_Y // 8, SIDE_X // 8)
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    truth = in_tissue((ys + 0.5) * 8, (xs + 0.5) * 8)
    assert (tissue_mask(image) == truth).mean() > 0.99
    pink = np.full((40, 40, 3), (205, 130, 180), np.uint8)
    pink[::3] = (110, 60, 150)
    assert tissue_mask(pink).all()  # Otsu splits it, the glass floor keeps it tissue
    with pytest.raises(ValueError, match='uint8 RGB'):
        tissue_mask(np.zeros((4, 4), np.uint8))


def test_fluorescence_tissue_mask_takes_the_dark_background():
    # the same slide as a fluorescence image: dark background, bright tissue
    image = 255 - draw_level(SIDE_Y // 8, SIDE_X // 8)
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    truth = in_tissue((ys + 0.5) * 8, (xs + 0.5) * 8)
    assert (tissue_mask(image, 'dark') == truth).mean() > 0.99
    assert (tissue_mask(image, 'bright') == truth).mean() < 0.5  # the wrong polarity
    dim = np.full((40, 40, 3), 60, np.uint8)
    dim[::3] = 150
    assert tissue_mask(dim, 'dark').all()  # Otsu splits it, the floor keeps it tissue
    with pytest.raises(ValueError, match="background must be one of"):
        tissue_mask(image, 'grey')


def test_fluorescence_sampler_puts_no_box_on_the_dark_background():
    from gattn_mm.models.utils import ImageSource, NativeBatch
    image = 255 - draw_level(SIDE_Y // 4, SIDE_X // 4)  # 768 x 512
    batch = NativeBatch([ImageSource(torch.from_numpy(image.transpose(2, 0, 1).copy()),
                                     [128.] * 3, [64.] * 3)])
    h, w = 24, 16
    attention = torch.rand(1, h, w, generator=torch.Generator().manual_seed(0))
    attention[0, :8] += 5.  # most attention on the top third: background
    attention = attention / attention.sum()
    for mask, on_tissue in (('fluorescence', True), (False, False)):
        sampler = InstanceSampler(num_instances=8, box_size=16, tissue_mask=mask).eval()
        _, boxes = sampler(attention, batch.canvas((h * 8, w * 8)), batch.extents, batch)
        cx = (boxes[0, :, 0] + boxes[0, :, 2]).numpy() / 2 * 4  # level-0 px of the slide
        cy = (boxes[0, :, 1] + boxes[0, :, 3]).numpy() / 2 * 4
        assert in_tissue(cy, cx).all() == on_tissue


# ------------------------------------------------------------------- whole runs

def test_boxes_in_um_have_that_size_and_lie_on_tissue_of_the_synthetic_slide(
        tmp_path, slide_path):
    code, out = run_infer(tmp_path, um_config(tmp_path), [slide_path])
    assert code == 0, out['failures']
    result = out['results'][0]
    boxes = np.asarray(result['boxes'])
    assert (result['height'], result['width']) == (SIDE_Y, SIDE_X)
    np.testing.assert_allclose(boxes[:, 3] - boxes[:, 1], BOX_UM / MPP[0], atol=0.02)
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], BOX_UM / MPP[1], atol=0.02)
    cy, cx = (boxes[:, 1] + boxes[:, 3]) / 2, (boxes[:, 0] + boxes[:, 2]) / 2
    assert in_tissue(cy, cx).all(), boxes  # every box centred on the ellipse
    # without the mask the same model puts boxes on glass: the test tells them apart
    code, plain = run_infer(tmp_path, um_config(tmp_path, tissue=False), [slide_path])
    b = np.asarray(plain['results'][0]['boxes'])
    assert not in_tissue((b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2).all()


def test_a_slide_without_a_pixel_size_is_named_when_boxes_are_in_um(tmp_path):
    bare = write_slide(str(tmp_path / 'bare.tif'), resolution=False)
    code, out = run_infer(tmp_path, um_config(tmp_path), [bare])
    assert code == 1 and not out['results']
    assert out['failures'][0]['image'] == bare
    assert 'bare.tif: no pixel size' in out['failures'][0]['error']


def test_boxes_in_um_on_the_cmu_svs_lie_on_tissue(tmp_path):
    pytest.importorskip('openslide')
    if not present('cmu_small_region.svs'):
        pytest.skip('cmu_small_region.svs is not in data/real: run `make real-data`')
    svs = real_file('cmu_small_region.svs')
    code, out = run_infer(tmp_path, um_config(tmp_path), [svs])
    assert code == 0, out['failures']
    boxes = np.asarray(out['results'][0]['boxes'])
    np.testing.assert_allclose(boxes[:, 2:] - boxes[:, :2], BOX_UM / 0.499, atol=0.02)
    # tissue found independently: Otsu on the slide read whole at 1/4
    import cv2
    slide = open_slide(svs, 1 << 26)
    image = cv2.resize(slide.read(0, 0, 0, *slide.shape), None, fx=0.25, fy=0.25,
                       interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = gray <= t
    assert 0.2 < mask.mean() < 0.6  # the region has glass to avoid
    shares = [tissue_share(b, mask, (0.25, 0.25)) for b in boxes]
    assert min(shares) >= 0.3, shares
