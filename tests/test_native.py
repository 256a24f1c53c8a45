"""The native-resolution path: images at their own size (no canvas), whole-slide images
read lazily from their pyramid, crops from the native pixels."""
import glob
import json
import os
import os.path as osp
import socket
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import gattn_mm  # noqa: F401
from gattn_mm.datasets.slide_writer import DigitSlideSpec, digit_slide_array, write_digit_slide
from gattn_mm.datasets.slides import SlideError, TiffSlide, open_slide
from gattn_mm.datasets.transforms import LoadMicroscopyImage
from gattn_mm.models.utils import ImageSource, NativeBatch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CANVAS_CFG = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
NATIVE_CFG = osp.join(ROOT, 'configs', 'gattn_digitbags_native.py')
CKPT = sorted(glob.glob(osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_*.pth')))[-1]
MEAN, STD = [127.5] * 3, [63.75] * 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def models():
    """The published DigitBags weights in the canvas and the native config."""
    init_default_scope('mmpretrain')
    state = torch.load(CKPT, map_location='cpu', weights_only=True)['state_dict']
    out = {}
    for name, path in (('canvas', CANVAS_CFG), ('native', NATIVE_CFG)):
        model = MODELS.build(Config.fromfile(path).model)
        model.load_state_dict(state)
        out[name] = model.eval()
    return out


def bgr(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array[..., ::-1].transpose(2, 0, 1)))


def native(*images) -> NativeBatch:
    return NativeBatch([ImageSource(bgr(im), MEAN, STD, to_rgb=True) for im in images])


def contains(box, digit) -> bool:
    """The box (xyxy) holds the digit's centre."""
    cx, cy = (digit[0] + digit[2]) / 2, (digit[1] + digit[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


@torch.no_grad()
def test_native_config_predicts_as_the_canvas_config_on_bags(models):
    images = [digit_slide_array(DigitSlideSpec(side=512, labels=labels, seed=s))
              for s, labels in enumerate([(9, 3, 5), (1, 2), (4, 9, 6, 0)])]
    canvas = models['canvas'].data_preprocessor(
        dict(inputs=[bgr(im) for im in images], data_samples=[DataSample()] * 3))['inputs']
    a = models['canvas'].forward_state(canvas)
    b = models['native'].forward_state(native(*images))
    torch.testing.assert_close(b.attention, a.attention, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.boxes, a.boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(models['native'].predict_logits(b),
                               models['canvas'].predict_logits(a), atol=1e-4, rtol=0)
    assert models['native'].predict_logits(b).argmax(1).tolist() == [1, 0, 1]


@torch.no_grad()
def test_images_of_different_sizes_in_one_batch_predict_as_alone(models):
    model = models['native']
    big = digit_slide_array(DigitSlideSpec(side=1400, labels=(9, 7), seed=3))[:, :900]
    small = digit_slide_array(DigitSlideSpec(side=600, labels=(2, 8, 1), seed=4))
    together = model.forward_state(native(big, small))
    for i, image in enumerate((big, small)):
        alone = model.forward_state(native(image))
        torch.testing.assert_close(together.boxes[i], alone.boxes[0], atol=1e-3, rtol=0)
        torch.testing.assert_close(model.predict_logits(together)[i],
                                   model.predict_logits(alone)[0], atol=1e-5, rtol=0)
    # the boxes are in each image's own pixels, inside it
    boxes = together.boxes
    assert boxes[0, :, 2].max() <= 900 and boxes[0, :, 3].max() <= 1400
    assert boxes[1, :, 2:].max() <= 600 and boxes[0, :, 2].max() > 600


def test_crops_are_the_native_pixels_of_a_wide_image(models):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1000, 3000, 3), dtype=np.uint8)  # RGB, 3000 x 1000
    batch = NativeBatch([ImageSource(torch.from_numpy(image.transpose(2, 0, 1).copy()),
                                     MEAN, STD)])
    sampler = models['native'].sampler
    boxes = torch.tensor([[[2500., 700., 2532., 732.], [0., 0., 32., 32.],
                           [2968., 968., 3000., 1000.]]])
    crops = sampler.crop(batch, boxes, batch.shapes())  # in eval: (1*3*V, 3, 32, 32)
    crops = crops.view(3, sampler.num_views, 3, 32, 32)[:, 0]
    for crop, (x1, y1, x2, y2) in zip(crops, boxes[0].int().tolist()):
        expected = (torch.from_numpy(image[y1:y2, x1:x2].transpose(2, 0, 1).copy()).float()
                    - 127.5) / 63.75
        torch.testing.assert_close(crop, expected, atol=1e-4, rtol=0)


def test_one_packed_roi_align_is_roi_align_on_the_whole_image():
    """The packed crop (each box's region read alone, one roi_align call) gives what
    roi_align on the whole normalised image gives, at the borders too, for boxes of
    any size and position (resampled crops, not only 1:1)."""
    from torchvision.ops import roi_align
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.integers(0, 256, (3, 300, 500), dtype=np.uint8))
    source = ImageSource(image, MEAN, STD)
    boxes = torch.tensor([[0., 0., 40., 40.], [460., 260., 500., 300.], [0., 250., 77., 300.],
                          [123.4, 56.7, 190.1, 99.9], [10., 5., 490., 295.]])
    crops = source.crop(boxes, (16, 24))
    whole = (image.float() - 127.5) / 63.75
    rois = torch.cat([torch.arange(5.)[:, None], boxes], dim=1)
    expected = roi_align(whole[None].expand(5, -1, -1, -1).contiguous(), rois, (16, 24),
                         spatial_scale=1.0, sampling_ratio=0, aligned=True)
    torch.testing.assert_close(crops, expected, atol=1e-4, rtol=0)
    assert source.crop(boxes[:0], (16, 24)).shape == (0, 3, 16, 24)


def test_native_training_step_on_mixed_sizes():
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(NATIVE_CFG)
    model = MODELS.build(cfg.model).train()
    pre = model.data_preprocessor
    images = [bgr(digit_slide_array(DigitSlideSpec(side=s, labels=(9,), seed=s)))[:, :, :w]
              for s, w in ((512, 400), (700, 700))]
    samples = [DataSample().set_gt_label(1), DataSample().set_gt_label(1)]
    data = pre(dict(inputs=images, data_samples=samples), True)
    assert isinstance(data['inputs'], NativeBatch)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.neck.attention_w.weight.grad.abs().sum() > 0


def test_native_preprocessor_refuses_batch_augments():
    from gattn_mm.models import NativeDataPreprocessor
    with pytest.raises(ValueError, match='batch augments'):
        NativeDataPreprocessor(batch_augments=dict(augments=[dict(type='Mixup', alpha=1)]))


@pytest.fixture(scope='module')
def slides(tmp_path_factory):
    out = tmp_path_factory.mktemp('slides')
    made = {}
    for side in (2000, 8000):
        path = str(out / f'slide_{side}.tif')
        made[side] = (path, write_digit_slide(path, DigitSlideSpec(side=side)))
    return made


def test_slide_writer_plants_digits_at_the_level0_boxes(slides):
    path, info = slides[8000]
    slide = open_slide(path, 10 ** 8)
    assert slide.level_shapes[0] == (8000, 8000) and len(slide.level_shapes) > 4
    for x1, y1, x2, y2 in info['boxes']:
        inside = slide.read(0, y1, x1, y2 - y1, x2 - x1).astype(float)
        outside = slide.read(0, y1, x2 + 50, y2 - y1, x2 - x1).astype(float)
        assert inside.mean() < outside.mean() - 10  # dark ink on the background
    # the same layout at another size (scaled)
    assert info['boxes'][0] == [round(v * 4) for v in slides[2000][1]['boxes'][0]] or \
        np.allclose(info['boxes'], np.array(slides[2000][1]['boxes']) * 4, atol=4)


def test_infer_classifies_slides_lazily_with_level0_boxes(tmp_path, slides):
    """tools/infer.py: two slides, the same picture as a PNG (decoded, native size) and
    a truncated slide (refused, named, the others still written)."""
    import cv2
    out = tmp_path / 'res.json'
    png = str(tmp_path / 'same_2000.png')
    cv2.imwrite(png, digit_slide_array(DigitSlideSpec(side=2000))[..., ::-1])
    data = open(slides[8000][0], 'rb').read()
    bad = tmp_path / 'truncated.tif'
    bad.write_bytes(data[:len(data) // 2])
    proc = subprocess.run([sys.executable, 'tools/infer.py', NATIVE_CFG, CKPT, slides[8000][0],
                           slides[2000][0], png, str(bad), '--out', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]  # one image could not be read
    result = json.load(open(out))
    assert len(result['failures']) == 1 and 'truncated.tif' in result['failures'][0]['error']
    results = result['results']
    assert [r['pred_label'] for r in results] == [1, 1, 1]  # a 9 is present
    for r, (path, info) in zip(results, [slides[8000], slides[2000], slides[2000]]):
        box = r['boxes'][r['deciding_instances'][0]]
        assert contains(box, info['boxes'][0])  # the 9 is the first planted digit
        assert max(max(b) for b in r['boxes']) <= info['levels'][0]


def test_slide_pickles_and_reopens(slides):
    slide = open_slide(slides[2000][0], 10 ** 8)
    region = slide.read(1, 100, 200, 50, 60)
    again = pickle.loads(pickle.dumps(slide))
    assert again._handle is None
    np.testing.assert_array_equal(again.read(1, 100, 200, 50, 60), region)
    assert region.shape == (50, 60, 3)


def test_truncated_slide_is_refused_naming_the_file(tmp_path, slides):
    data = open(slides[8000][0], 'rb').read()
    bad = tmp_path / 'truncated.tif'
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(SlideError, match='truncated.tif: truncated'):
        open_slide(str(bad), 10 ** 8)


def test_tiff_without_pyramid_over_the_budget_says_how_to_convert(tmp_path, monkeypatch):
    """Refused with the file closed and no word of reading by strips (nothing is
    read); opened as a slide within the budget, the strip read is announced."""
    import tifffile
    import warnings
    path = str(tmp_path / 'flat.tif')
    tifffile.imwrite(path, np.full((300, 400, 3), 200, np.uint8), photometric='rgb')
    closed, close = [], TiffSlide.close
    monkeypatch.setattr(TiffSlide, 'close',
                        lambda self: (closed.append(self._handle is not None), close(self)))
    loader = LoadMicroscopyImage(lazy_slides=True, max_pixels=300 * 300)
    assert loader.is_slide(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(SlideError, match='no pyramid.*vips tiffsave'):
            loader(dict(img_path=path))
    assert closed == [True]  # the file handle released before the refusal
    assert not [w for w in caught if 'strips' in str(w.message)]
    with pytest.warns(UserWarning, match='flat.tif: a TIFF without tiles or pyramid is '
                                         'read by strips'):
        open_slide(path, 10 ** 6).close()
    # under the budget it is an ordinary image, decoded
    small = LoadMicroscopyImage(lazy_slides=True)(dict(img_path=path))
    assert 'slide' not in small and small['img'].shape == (300, 400, 3)


def test_no_slide_read_decodes_more_than_the_budget(slides, monkeypatch):
    """The thumbnail, the glance and the contrast read whole only levels within
    max_pixels (a coarser one, enlarged, when the level covering the view is larger);
    a region over it is refused, naming the file, level and size."""
    from gattn_mm.models.utils import SlideSource
    path, budget, reads, read = slides[2000][0], 300 * 300, [], TiffSlide._read
    monkeypatch.setattr(TiffSlide, '_read', lambda self, level, y0, x0, y1, x1: (
        reads.append((y1 - y0) * (x1 - x0)), read(self, level, y0, x0, y1, x1))[1])
    out = LoadMicroscopyImage(lazy_slides=True, max_pixels=budget)(dict(img_path=path))
    slide = out['slide']
    assert slide.level_shapes[3] == (250, 250) and slide.level_shapes[0] == (2000, 2000)
    assert out['img'].shape == (1024, 1024, 3) and reads == [250 * 250]  # level 3, enlarged
    assert pickle.loads(pickle.dumps(slide)).max_pixels == budget
    batch = NativeBatch([SlideSource(slide, [0.] * 3, [1.] * 3)])
    assert batch.glance((512, 512)).shape == (1, 3, 512, 512)
    assert batch.gray_std((16, 16)).shape == (1, 256)
    assert max(reads) <= budget
    with pytest.raises(SlideError, match=r'slide_2000.tif: level 0 region \[0:2000, 0:2000\] '
                                         r'is 2000 x 2000 = 4,000,000 pixels, over the limit '
                                         r'of 90,000'):
        slide.read(0, 0, 0, 2000, 2000)
    assert open_slide(path, 10 ** 8).level_covering((1024, 1024)) == 0  # room: covering


def test_openslide_format_without_openslide_is_refused(tmp_path, monkeypatch):
    path = tmp_path / 'scan.svs'
    path.write_bytes(b'II*\x00junk')
    monkeypatch.setitem(sys.modules, 'openslide', None)  # import fails
    with pytest.raises(SlideError, match='scan.svs.*openslide-python'):
        open_slide(str(path), 10 ** 8)
    other = tmp_path / 'scan.jp2'
    other.write_bytes(b'x')
    with pytest.raises(SlideError, match='scan.jp2: not a slide format'):
        open_slide(str(other), 10 ** 8)


def test_openslide_reads_the_same_pixels_as_tifffile(slides):
    pytest.importorskip('openslide')
    from gattn_mm.datasets.slides import OpenSlideSlide
    path = slides[2000][0]
    ours, theirs = TiffSlide(path), OpenSlideSlide(path)
    assert theirs.level_shapes == ours.level_shapes
    for level in (0, 2):
        np.testing.assert_array_equal(theirs.read(level, 40, 30, 100, 120),
                                      ours.read(level, 40, 30, 100, 120))


def slide_folder(root, slides, rows):
    import shutil
    (root / 'slides').mkdir(parents=True, exist_ok=True)
    shutil.copy(slides[2000][0], root / 'slides' / 'case_a.tif')
    shutil.copy(slides[2000][0], root / 'slides' / 'case_b.tiff')
    shutil.copy(slides[2000][0], root / 'slides' / 'case_c.tif')
    (root / 'labels.csv').write_text('slide_id,label,split\n' + '\n'.join(rows) + '\n')
    return str(root)


def test_slide_folder_reads_a_csv_of_labels_and_feeds_the_native_model(tmp_path, slides,
                                                                      models):
    from gattn_mm.datasets import SlideFolder
    from mmengine.dataset import pseudo_collate
    root = slide_folder(tmp_path, slides, ['case_a,tumor,train', 'case_b,normal,train',
                                           'case_c,tumor,test'])
    pipeline = Config.fromfile(NATIVE_CFG).test_dataloader.dataset.pipeline
    train = SlideFolder(root, split='train', pipeline=pipeline)
    assert train.metainfo['classes'] == ('normal', 'tumor') and len(train) == 2
    assert train.get_gt_labels().tolist() == [1, 0]
    assert len(SlideFolder(root, split='test', pipeline=pipeline)) == 1
    item = train[0]
    assert item['data_samples'].slide.shape == (2000, 2000)
    assert max(item['inputs'].shape[-2:]) <= 1024  # a thumbnail, not the slide
    model = models['native']
    data = model.data_preprocessor(pseudo_collate([item, train[1]]))
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    assert [int(p.pred_label) for p in preds] == [1, 1]
    assert preds[0].ori_boxes.max() <= 2000


@pytest.mark.parametrize('rows,error', [
    (['case_a,tumor,train', 'case_d,normal,train'], "no slide 'case_d'"),
    (['case_a,,train'], 'labels.csv:2: empty slide_id or label'),
    (['../case_a,tumor,train'], 'outside the slide folder'),
])
def test_slide_folder_names_the_bad_line(tmp_path, slides, rows, error):
    from gattn_mm.datasets import SlideFolder
    root = slide_folder(tmp_path, slides, rows)
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        SlideFolder(root, split='train')


def test_slide_tools_write_a_slide_and_draw_it_on_its_thumbnail(tmp_path, capsys):
    """tools/dataset_converters/make_slide.py writes a slide and its boxes;
    tools/visualize_attention.py draws it on its thumbnail (GattnInferencer.draw_slide):
    the thumbnail, a caption bar and the strip of crops read at native resolution."""
    from PIL import Image

    from tools import visualize_attention
    from tools.dataset_converters import make_slide
    path = str(tmp_path / 'slide.tif')
    make_slide.main(['--side', '3000', '--out', path])
    info = json.loads(capsys.readouterr().out)
    assert info['labels'] == [9, 3, 5] and info['levels'][0] == 3000
    assert json.load(open(path + '.json')) == info
    with pytest.raises(SystemExit):
        make_slide.main(['--side', '3000', '--out', str(tmp_path / 'slide.png')])
    out = tmp_path / 'drawn'
    assert visualize_attention.main([NATIVE_CFG, CKPT, path, '--out-dir', str(out),
                                     '--topk', '4']) == [str(out / 'slide.png')]
    drawn = Image.open(out / 'slide.png')
    assert drawn.width == 1024 and drawn.height > 1024 + 64


def test_slides_benchmark_quick(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/benchmarks/slides.py', '--quick',
                           '--out-dir', str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(tmp_path / 'slides_cpu_quick.json'))
    assert [(r['path'], r['side']) for r in result['rows']] == [('native', 1500),
                                                                ('canvas', 1500)]
    for row in result['rows']:
        assert row['pred_label'] == 1 and row['nine_in_deciding_box']
        assert row['peak_rss_mb'] > 100 and row['infer_s'] > 0
    assert (tmp_path / 'slides_cpu_quick.png').stat().st_size > 1000
    assert '| native | 1,500 |' in (tmp_path / 'slides_cpu_quick.md').read_text()


def test_fungi_config_trains_and_validates_on_images_of_mixed_sizes(tmp_path):
    """tools/train.py, unchanged, on the native Fungi config: images of different
    sizes share a batch, no canvas; the validation runs on them too."""
    from PIL import Image
    rng = np.random.default_rng(0)
    sizes = [(300, 420), (512, 380), (260, 260), (450, 300)]
    for split in ('train', 'val', 'test'):
        for k, species in enumerate(('candida', 'aspergillus')):
            (tmp_path / split / species).mkdir(parents=True)
            for i, (h, w) in enumerate(sizes[:2 if split != 'train' else 4]):
                img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8) // (k + 1)
                Image.fromarray(img).save(tmp_path / split / species / f'{i}.png')
    opts = [f'{s}_dataloader.dataset.data_root={tmp_path}' for s in ('train', 'val', 'test')]
    opts += [f'{s}_dataloader.num_workers=0' for s in ('train', 'val', 'test')]
    opts += [f'{s}_dataloader.batch_size=4' for s in ('train', 'val', 'test')]
    opts += ['num_classes=2', 'model.head.num_classes=2', 'model.instance_head.num_classes=2',
             'model.data_preprocessor.num_classes=2', 'model.backbone.init_cfg=None',
             'model.backbone.depth=18', 'model.neck.in_channels=512',
             'model.head.in_channels=512', 'model.instance_head.in_channels=512',
             'model.sampler.crop_size=64', 'model.sampler.box_size=96', 'model.global_size=96',
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
    cfg = osp.join(ROOT, 'configs', 'gattn_fungi.py')
    work = tmp_path / 'work'
    env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable, OMP_NUM_THREADS='1')
    # two DDP processes (gloo on the CPU), each with its share of the mixed sizes
    proc = subprocess.run(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', str(work),
                           '--cfg-options', *opts, 'train_dataloader.batch_size=2'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (work / 'epoch_1.pth').is_file()
    logs = sorted(work.glob('*/vis_data/scalars.json'))
    assert logs and 'accuracy/top1' in logs[-1].read_text()  # validated natively
    proc = subprocess.run([sys.executable, 'tools/test.py', cfg, str(work / 'epoch_1.pth'),
                           '--work-dir', str(work), '--out', str(work / 'm.json'),
                           '--out-item', 'metrics', '--cfg-options', *opts],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'accuracy/top1' in json.load(open(work / 'm.json'))  # tested natively


def test_slide_folder_skip_invalid_drops_a_truncated_slide(tmp_path, slides):
    from gattn_mm.datasets import SlideFolder
    root = slide_folder(tmp_path, slides, ['case_a,tumor,train', 'case_b,normal,train'])
    data = open(slides[2000][0], 'rb').read()
    (tmp_path / 'slides' / 'case_b.tiff').write_bytes(data[:len(data) // 2])
    dataset = SlideFolder(root, split='train', skip_invalid=True)
    assert len(dataset) == 1 and dataset.num_skipped == 1
    assert dataset.skipped[0].endswith('case_b.tiff')


def test_contrast_is_read_once_per_batch(monkeypatch):
    """The sampler's exploration and the contrast prior loss ask one batch for the
    same contrast: the full-resolution pixels are read once, the values unchanged."""
    from gattn_mm.models.utils import native_batch
    calls = []
    real = native_batch.gray_std
    monkeypatch.setattr(native_batch, 'gray_std', lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    images = [torch.rand(3, 90, 130) * 255, torch.rand(3, 120, 70) * 255]
    batch = NativeBatch([ImageSource(img, [0.] * 3, [1.] * 3) for img in images])
    first = batch.gray_std((8, 8))
    assert len(calls) == 2  # one per image
    assert batch.gray_std((8, 8)) is first and len(calls) == 2
    fresh = NativeBatch([ImageSource(img, [0.] * 3, [1.] * 3) for img in images])
    assert torch.equal(fresh.gray_std((8, 8)), first)
    assert batch.gray_std((4, 4)).shape == (2, 16) and len(calls) == 6  # another grid: read


def test_contrast_of_a_cell_across_the_edge_is_its_image_pixels():
    """A non-square image is padded to its virtual canvas: a cell across its edge has
    the contrast of its image pixels alone (not of the step to the padding), so the
    prior's strongest cell is the structure, not the edge."""
    image = torch.full((3, 100, 61), 200.)  # a flat bright field, 61 px wide
    image[:, 40:50, 20:30] = 60.  # one dark structure
    image[:, :, 60] = 190.  # the last column, in an edge cell (61 / 100 * 8 = 4.9 cells)
    batch = NativeBatch([ImageSource(image, [123.] * 3, [58.] * 3)])
    contrast = batch.gray_std((8, 8)).view(8, 8)
    structure = divmod(int(contrast.argmax()), 8)
    assert structure == (3, 2), contrast  # rows 40-50 of 100 -> 3.2-4, cols 20-30 -> 1.6-2.4
    edge = contrast[0, 4]  # image columns 50-61 (cell 50-62.5): flat but its last column
    pixels = (image[0, :12, 50:61].mean() - 123.) / 58.
    assert 0 < edge < 0.05 and pixels > 0  # the image's own small step, not 1.3 sigma
    assert torch.all(contrast[:, 5:] == 0)  # padding only
