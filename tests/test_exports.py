"""Exports of tools/infer.py and GattnInferencer: GeoJSON of the instances (parsed and
its geometry checked independently; with shapely when installed), the attention heat
map TIFF, the CSV, the JSON's provenance; no user file overwritten, output paths
checked before the model runs."""
import csv
import glob
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
import tifffile

import gattn_mm  # noqa: F401
from gattn_mm.apis.exports import (export_files, instances_geojson, is_own_export,
                                   write_geojson)
from real_files import present, real_file
from test_physical_scale import MPP, SIDE_X, SIDE_Y, um_config, write_slide

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NATIVE_CFG = osp.join(ROOT, 'configs', 'gattn_digitbags_native.py')
CKPT = sorted(glob.glob(osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_*.pth')))[-1]


@pytest.fixture(scope='module')
def slide_path(tmp_path_factory):
    return write_slide(str(tmp_path_factory.mktemp('slide') / 'tissue.tif'))


@pytest.fixture(scope='module')
def image_path(tmp_path_factory):
    import cv2
    path = str(tmp_path_factory.mktemp('image') / 'field.png')
    rng = np.random.default_rng(0)
    cv2.imwrite(path, rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    return path


def infer(tmp_path, images, *extra, config=NATIVE_CFG, out='results.json'):
    from tools import infer as tool
    code = tool.main([config, CKPT, *images, '--out', str(tmp_path / out),
                      '--device', 'cpu', *extra])
    return code, json.loads((tmp_path / out).read_text())


def check_collection(collection: dict, width: int, height: int, count: int) -> None:
    """A FeatureCollection of ``count`` Polygon Features, every ring a closed,
    counter-clockwise (in its numbers) rectangle inside [0, width] x [0, height]."""
    assert collection['type'] == 'FeatureCollection'
    assert (collection['width'], collection['height']) == (width, height)
    assert len(collection['features']) == count
    for rank, feature in enumerate(collection['features'], 1):
        assert feature['type'] == 'Feature' and feature['geometry']['type'] == 'Polygon'
        ring = np.asarray(feature['geometry']['coordinates'][0], float)
        assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
        x, y = ring[:, 0], ring[:, 1]
        assert 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) > 0  # RFC 7946 orientation
        assert x.min() >= 0 and y.min() >= 0 and x.max() <= width and y.max() <= height
        props = feature['properties']
        assert props['rank'] == rank and props['name'] == f'#{rank}'
        assert 0 <= props['attention'] <= 1 and np.isfinite(props['evidence'])
        assert isinstance(props['deciding'], bool) and props['class'] in ('no_9', 'has_9')
        assert props['classification'] == {'name': props['class']}
        assert props['objectType'] == 'annotation'
    try:
        import shapely.geometry
    except ImportError:
        return
    frame = shapely.geometry.box(0, 0, width, height)
    for feature in collection['features']:
        polygon = shapely.geometry.shape(feature['geometry'])
        assert polygon.is_valid and frame.covers(polygon)


def test_infer_writes_geojson_heatmap_csv_and_provenance(tmp_path, slide_path, image_path):
    code, out = infer(tmp_path, [slide_path, image_path], '--geojson', str(tmp_path / 'gj'),
                      '--heatmap', str(tmp_path / 'hm'), '--csv', str(tmp_path / 'r.csv'),
                      config=um_config(tmp_path, tissue=False))
    assert code == 1  # the PNG has no pixel size for boxes in µm: named, skipped
    assert out['failures'][0]['image'] == image_path
    code, out = infer(tmp_path, [slide_path, image_path], '--geojson', str(tmp_path / 'gj'),
                      '--heatmap', str(tmp_path / 'hm'), '--csv', str(tmp_path / 'r.csv'))
    assert code == 0, out['failures']
    digest = hashlib.sha256(open(CKPT, 'rb').read()).hexdigest()
    assert out['model'] == dict(config=NATIVE_CFG, checkpoint=CKPT,
                                checkpoint_sha256=digest, classes=['no_9', 'has_9'])
    assert out['box_format'] == 'xyxy' and out['box_units'].startswith('level-0 pixels')
    slide, image = out['results']
    assert (slide['width'], slide['height']) == (SIDE_X, SIDE_Y)
    assert (image['width'], image['height']) == (400, 300)
    for entry in (slide, image):  # the GeoJSON: parsed, every polygon inside the image
        with open(entry['geojson']) as f:
            collection = json.load(f)
        check_collection(collection, entry['width'], entry['height'], len(entry['boxes']))
        assert collection['image'] == entry['image']
        rings = [f['geometry']['coordinates'][0] for f in collection['features']]
        np.testing.assert_allclose([[r[0][0], r[0][1], r[2][0], r[2][1]] for r in rings],
                                   entry['boxes'])
        deciding = [f['properties']['rank'] - 1 for f in collection['features']
                    if f['properties']['deciding']]
        assert deciding == entry['deciding_instances']
    assert osp.basename(slide['geojson']) == 'tissue.geojson'
    with tifffile.TiffFile(slide['heatmap']) as tif:  # at a pyramid level: 1/2 of 3072
        page = tif.pages[0]
        heat = page.asarray()
        assert heat.shape == (SIDE_Y // 2, SIDE_X // 2) and heat.dtype == np.float32
        meta = json.loads(page.description)
        assert meta['downsample'] == 2 and (meta['width'], meta['height']) == (SIDE_X, SIDE_Y)
        xres, yres = page.tags['XResolution'].value, page.tags['YResolution'].value
        assert 1e4 / (xres[0] / xres[1]) == pytest.approx(MPP[1] * 2, rel=1e-4)  # µm/px
        assert 1e4 / (yres[0] / yres[1]) == pytest.approx(MPP[0] * 2, rel=1e-4)
    assert heat.min() >= 0 and heat.max() > 0
    with tifffile.TiffFile(image['heatmap']) as tif:
        assert tif.pages[0].shape == (300, 400)
    with open(tmp_path / 'r.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['path'] for r in rows] == [slide_path, image_path]
    for row, entry in zip(rows, (slide, image)):
        assert (int(row['width']), int(row['height'])) == (entry['width'], entry['height'])
        assert row['prediction'] == entry['pred_class']
        scores = [float(row['score_no_9']), float(row['score_has_9'])]
        assert sum(scores) == pytest.approx(1, abs=1e-5)
        assert row['checkpoint_sha256'] == digest and row['config'] == NATIVE_CFG
    # a second run replaces its own files
    code, again = infer(tmp_path, [slide_path], '--geojson', str(tmp_path / 'gj'),
                        '--heatmap', str(tmp_path / 'hm'), '--csv', str(tmp_path / 'r.csv'))
    assert code == 0 and again['results'][0]['boxes'] == slide['boxes']


def test_geojson_of_the_cmu_svs_lies_inside_it(tmp_path):
    pytest.importorskip('openslide')
    if not present('cmu_small_region.svs'):
        pytest.skip('cmu_small_region.svs is not in data/real: run `make real-data`')
    svs = real_file('cmu_small_region.svs')
    code, out = infer(tmp_path, [svs], '--geojson', str(tmp_path / 'gj'),
                      config=um_config(tmp_path))
    assert code == 0, out['failures']
    entry = out['results'][0]
    assert (entry['width'], entry['height']) == (2220, 2967)
    with open(entry['geojson']) as f:
        check_collection(json.load(f), 2220, 2967, len(entry['boxes']))


def test_no_user_file_is_overwritten_and_paths_are_checked_first(tmp_path, image_path):
    (tmp_path / 'gj').mkdir()
    mine = tmp_path / 'gj' / 'field.geojson'
    mine.write_text('{"type": "FeatureCollection", "features": []}')  # a user's own
    (tmp_path / 'mine.csv').write_text('a,b\n1,2\n')
    (tmp_path / 'hm').write_text('a file, not a folder')
    for args, words in (
            (['--geojson', str(tmp_path / 'gj')], 'field.geojson exists and was not written'),
            (['--csv', str(tmp_path / 'mine.csv')], 'mine.csv exists and was not written'),
            (['--heatmap', str(tmp_path / 'hm')], 'not a folder'),
            (['--csv', image_path], 'would overwrite the input')):
        with pytest.raises(SystemExit, match=words):
            infer(tmp_path, [image_path], *args)
        assert not (tmp_path / 'results.json').exists()  # before the model ran
    assert mine.read_text().startswith('{"type": "FeatureCollection", "features"')
    assert (tmp_path / 'mine.csv').read_text() == 'a,b\n1,2\n'
    # the API refuses too
    result = dict(boxes=np.zeros((0, 4)), image_size=(3, 4))
    with pytest.raises(FileExistsError, match='not written by gattn-mm'):
        write_geojson(str(mine), instances_geojson('x.png', result))
    assert not is_own_export(str(mine))


def test_inferencer_exports_by_keyword(tmp_path, image_path):
    from gattn_mm.apis import GattnInferencer
    inferencer = GattnInferencer(NATIVE_CFG, pretrained=CKPT, device='cpu')
    array = np.zeros((64, 80, 3), np.uint8)
    results = inferencer([image_path, array], geojson_dir=str(tmp_path / 'gj'),
                         heatmap_dir=str(tmp_path / 'hm'))
    assert results[0]['image_size'] == (300, 400) and 'pixel_size_um' not in results[0]
    files = export_files([image_path, array], str(tmp_path / 'gj'), '.geojson')
    assert [osp.basename(f) for f in files] == ['field.geojson', '1.geojson']
    for path, (h, w) in zip(files, ((300, 400), (64, 80))):
        with open(path) as f:
            check_collection(json.load(f), w, h, len(results[0]['boxes']))
    assert tifffile.imread(str(tmp_path / 'hm' / '1.attention.tif')).shape == (64, 80)
