"""Work is bounded by what is decoded and allocated, checked from headers and configs
before it happens: the tiles a read decodes (not the region asked for), the crops of a
model's instances, an ONNX export's traced input, and the files mmpretrain's own
inferencer reads (inside gattn_mm.apis.microscopy_reading)."""
import itertools
import os.path as osp

import numpy as np
import pytest
import tifffile

from gattn_mm.datasets.slides import SlideError, TiffSlide, open_slide
from gattn_mm.datasets.transforms import ImageReadError, read_image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')
CHECKPOINT = osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_20261129-7edf335a.pth')


def pyramid(path, levels):
    """levels: [(side, tile side)]: an RGB pyramid, each level in tiles of its own size
    (a tile may be larger than its level: TIFF pads it, as a hostile file may)."""
    with tifffile.TiffWriter(path) as tif:
        for i, (side, tile) in enumerate(levels):
            kw = dict(subifds=len(levels) - 1) if i == 0 else dict(subfiletype=1)
            tif.write(np.full((side, side, 3), 100, np.uint8), tile=(tile, tile),
                      compression='zlib', photometric='rgb', **kw)
    return str(path)


def test_decoded_pixels_count_whole_tiles():
    """For any tile shape and region: the tiles the region overlaps, each whole."""
    from gattn_mm.datasets.slides.base import Slide
    slide = Slide('x.tif')
    slide.level_shapes = [(100, 90)]
    for (th, tw), (y0, y1, x0, x1) in itertools.product(
            [(16, 16), (7, 30), (100, 90), (128, 128)],
            [(0, 1, 0, 1), (0, 100, 0, 90), (15, 17, 15, 17), (3, 50, 60, 90)]):
        slide.chunk_shapes = [(th, tw)]
        tiles = {(y // th, x // tw) for y in range(y0, y1) for x in range(x0, x1)}
        assert slide.decoded_pixels(0, y0, x0, y1, x1) == len(tiles) * th * tw
    slide.chunk_shapes = [None]  # layout unknown: the region itself
    assert slide.decoded_pixels(0, 3, 4, 10, 20) == 7 * 16


def test_a_read_is_refused_by_the_tiles_it_would_decode(tmp_path, monkeypatch):
    path = pyramid(tmp_path / 's.tif', [(1024, 256), (512, 2048), (256, 256)])
    slide = TiffSlide(path, max_pixels=2_000_000)
    assert slide.chunk_shapes == [(256, 256), (2048, 2048), (256, 256)]
    monkeypatch.setattr(TiffSlide, '_read', lambda *a: pytest.fail('decoded'))
    with pytest.raises(SlideError, match=r's.tif: level 1 region \[0:10, 0:10\] decodes 1 '
                                         r'tile\(s\) of 2048 x 2048 = 4,194,304 pixels, over '
                                         r'the limit of 2,000,000 .*not the region asked'):
        slide.read(1, 0, 0, 10, 10)  # 100 pixels asked, 4 M decoded
    # a level whose tiles are over the budget is never chosen to be read whole
    assert slide.level_covering((300, 300)) == 0
    assert slide.level_covering((200, 200)) == 2
    monkeypatch.undo()
    assert slide.read(0, 0, 0, 10, 10).shape == (10, 10, 3)
    slide.close()


def test_a_slide_whose_smallest_level_decodes_too_much_is_refused_when_opened(tmp_path):
    path = pyramid(tmp_path / 'hostile.tif', [(1024, 256), (512, 2048)])
    with pytest.raises(SlideError, match=r'hostile.tif: level 1 region \[0:512, 0:512\] '
                                         r'decodes 1 tile\(s\) of 2048 x 2048'):
        open_slide(path, max_pixels=2_000_000)
    assert open_slide(path, max_pixels=5_000_000).level_shapes == [(1024, 1024), (512, 512)]


def test_an_image_is_refused_by_the_tiles_it_would_decode(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / 'one_tile.tif', np.zeros((512, 512), np.uint8),
                     tile=(2048, 2048), compression='zlib')
    monkeypatch.setattr(tifffile.TiffPageSeries, 'asarray', lambda *a, **k: pytest.fail('x'))
    with pytest.raises(ImageReadError, match=r'one_tile.tif: its 512 x 512 pixels are stored '
                                             r'in 1 tile\(s\) of 2048 x 2048: decoding it '
                                             r'decodes 4,194,304 pixels, over the limit of '
                                             r'1,000,000'):
        read_image(str(tmp_path / 'one_tile.tif'), max_pixels=1_000_000)
    monkeypatch.undo()
    assert read_image(str(tmp_path / 'one_tile.tif'), max_pixels=5_000_000).shape == \
        (512, 512, 3)


def test_instances_are_budgeted_from_the_config(tmp_path):
    from mmengine.config import Config
    from mmpretrain.apis import get_model

    from gattn_mm.utils.instance_budget import InstanceBudgetError, check_instance_budget
    cfg = Config.fromfile(TINY)  # 16 x 16 crops: 3,072 bytes each
    budget = 4 * 1_000_000
    for key, one in (('model.sampler.test_cfg.num_instances', False),
                     ('model.sampler.num_instances', True)):
        for n, fits in ((1303, False), (1302, True)):
            cfg.model.sampler.num_instances = n if one else 4
            cfg.model.sampler.test_cfg = dict(num_instances=4 if one else n, views=[])
            if fits:
                check_instance_budget(get_model(cfg), max_pixels=1_000_000)
                continue
            with pytest.raises(InstanceBudgetError, match=f'{key}=1303: 1303 instances x 1 '
                                                          f'view.* over the budget of '
                                                          f'{budget:,}.*at most 1,302 '):
                check_instance_budget(get_model(cfg), max_pixels=1_000_000)
    cfg.model.sampler.test_cfg = dict(num_instances=435, views=[(0.1, 0), (0, 0.1)])
    with pytest.raises(InstanceBudgetError, match='435 instances x 3 view'):
        check_instance_budget(get_model(cfg), max_pixels=1_000_000)


def test_tools_refuse_too_many_instances_before_the_run(tmp_path, capsys):
    """tools/test.py and the inferencer stop before any data is read, naming the key."""
    from gattn_mm.apis import GattnInferencer
    from gattn_mm.utils.instance_budget import InstanceBudgetError
    from tools import test as test_tool
    opts = ['model.sampler.test_cfg.num_instances=100000000',
            f'test_dataloader.dataset.data_root={tmp_path / "no_data"}']
    with pytest.raises(SystemExit, match=r'error: model.sampler.test_cfg.num_instances='
                                         r'100000000: .* over the budget'):
        test_tool.main([TINY, CHECKPOINT, '--work-dir', str(tmp_path / 'w'),
                        '--cfg-options', *opts])
    from mmengine.config import Config
    cfg = Config.fromfile(TINY)
    cfg.model.sampler.test_cfg = dict(num_instances=10 ** 8)
    cfg.dump(str(tmp_path / 'many.py'))
    with pytest.raises(InstanceBudgetError, match='test_cfg.num_instances=100000000'):
        GattnInferencer(str(tmp_path / 'many.py'), device='cpu')


def test_export_refuses_a_traced_input_over_the_budget(tmp_path, monkeypatch):
    from tools.deployment import export_onnx
    monkeypatch.setattr(export_onnx, 'build_export_model', lambda *a: pytest.fail('built'))
    with pytest.raises(SystemExit, match=r'--shape 100000 100000: 2 x 100000 x 100000 = '
                                         r'20,000,000,000 pixels is over the limit'):
        export_onnx.main([TINY, CHECKPOINT, '--out', str(tmp_path / 'm.onnx'),
                          '--shape', '100000', '100000'])
    # the graph is run at two batches (the traced one and 1, or 2 for a trace at 1):
    # the larger counts, and a smaller --batch-size is suggested only where it helps
    with pytest.raises(SystemExit, match=r'--shape 10000 10000: 2 x 10000 x 10000 = '
                                         r'200,000,000 pixels .*its canvas\)$'):
        export_onnx.main([TINY, CHECKPOINT, '--out', str(tmp_path / 'm.onnx'),
                          '--shape', '10000', '10000', '--batch-size', '1'])
    with pytest.raises(SystemExit, match=r'--shape 8000 8000: 3 x 8000 x 8000 = '
                                         r'192,000,000 pixels .* or a smaller --batch-size'):
        export_onnx.main([TINY, CHECKPOINT, '--out', str(tmp_path / 'm.onnx'),
                          '--shape', '8000', '8000', '--batch-size', '3'])
    assert not (tmp_path / 'm.onnx').exists()


def png_bomb(path, side=30000):
    """A PNG whose header says side x side gray (900 M pixels); a few KB on disk."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b'\0' * (side + 1) * 64)  # the first rows only: never decoded
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', rows) +
                     chunk(b'IEND', b''))
    return str(path)


def test_mmpretrain_inferencer_reads_through_the_project_reader(tmp_path, tiny_checkpoint):
    """Inside microscopy_reading, mmpretrain's own inferencer refuses a bomb from its
    header and a z-stack, and reads a CMYK TIFF as RGB; outside, it is as before."""
    import resource

    from mmpretrain.apis import ImageClassificationInferencer

    import mmpretrain.apis.image_classification as ic
    from gattn_mm.apis import microscopy_reading
    config, ckpt = tiny_checkpoint
    inferencer = ImageClassificationInferencer(config, pretrained=ckpt, device='cpu')
    tifffile.imwrite(tmp_path / 'zstack.tif', np.zeros((5, 64, 64), np.uint8))
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:32] = (200, 40, 10)
    tifffile.imwrite(tmp_path / 'cmyk.tif', np.dstack([255 - rgb, np.zeros_like(rgb[..., :1])]),
                     photometric='separated')
    tifffile.imwrite(tmp_path / 'rgb.tif', rgb, photometric='rgb')
    original = ic.imread
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with microscopy_reading():
        assert ic.imread is not original
        with pytest.raises(ImageReadError, match=r'bomb.png: .*(900000000|900,000,000) pixels'):
            inferencer(png_bomb(tmp_path / 'bomb.png'))
        with pytest.raises(ImageReadError, match='zstack.tif: a TIFF stack'):
            inferencer(str(tmp_path / 'zstack.tif'))
        cmyk = inferencer(str(tmp_path / 'cmyk.tif'))[0]['pred_scores']
        assert np.allclose(cmyk, inferencer(str(tmp_path / 'rgb.tif'))[0]['pred_scores'])
        assert np.allclose(cmyk, inferencer(rgb[..., ::-1].copy())[0]['pred_scores'])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 400 * 1024  # KB
    assert ic.imread is original
