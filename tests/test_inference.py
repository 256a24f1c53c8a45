"""Inference, visualisation and mmpretrain's own clients on a gattn config + checkpoint."""
import glob
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gattn_mm  # noqa: F401
from gattn_mm.visualization import draw_attention

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_overlay_strongest_over_hot_region():
    image = np.full((120, 200, 3), 128, np.uint8)
    attention = np.full((6, 10), 0.001, np.float32)
    attention[1, 7] = 1.0  # hot cell: rows 20-40, cols 140-160
    boxes = np.array([[135., 15., 165., 45.]])
    drawn = draw_attention(image, attention, boxes, np.array([0.9]), 'pred: has_9 (0.97)',
                           show_crops=True)
    assert drawn.shape[1] == 200 and drawn.shape[0] > 120  # image + caption + crop strip
    heat = drawn[:120].astype(int)
    redness = heat[..., 0] - heat[..., 2]
    hot = redness[22:38, 142:158].mean()
    assert hot > 60 and hot > redness[80:110, 10:60].mean() + 50
    assert (drawn[15, 140:160] == [0, 255, 0]).all()  # the box's top edge is drawn


def test_gattn_inferencer_fields_and_boxes(tiny_checkpoint, tiny_digitbags):
    from gattn_mm.apis import GattnInferencer
    config, ckpt = tiny_checkpoint
    inferencer = GattnInferencer(config, pretrained=ckpt, device='cpu')
    path = osp.join(tiny_digitbags, 'images', 'test', 'test_000000.png')
    # a 2x larger copy: boxes must come back in its own pixels
    big = np.asarray(Image.open(path).resize((256, 256), Image.NEAREST))
    results = inferencer([path, np.repeat(big[..., None], 3, 2)])
    r0, r1 = results
    assert set(r0) >= {'pred_label', 'pred_score', 'pred_class', 'pred_scores', 'topk',
                       'attention', 'boxes', 'instance_scores'}
    assert isinstance(r0['pred_label'], int) and isinstance(r0['pred_score'], float)
    assert r0['boxes'].shape == (4, 4) and r0['instance_scores'].shape == (4,)
    assert r0['topk'][0]['label'] == r0['pred_label'] and len(r0['topk']) == 2
    samples = inferencer([np.repeat(big[..., None], 3, 2)], return_datasamples=True)
    s = samples[0]
    assert s.scale_factor == pytest.approx((0.5, 0.5))
    assert np.allclose(r1['boxes'], (s.boxes / 0.5).numpy(), atol=1e-3)
    assert np.allclose(r1['boxes'], s.ori_boxes.numpy(), atol=1e-3)
    assert r1['boxes'].max() <= 256 + 1e-3


def test_mmpretrain_clients(tiny_checkpoint, tiny_digitbags):
    from mmpretrain.apis import ImageClassificationInferencer, get_model
    config, ckpt = tiny_checkpoint
    model = get_model(config, pretrained=ckpt, device='cpu')
    state = torch.load(ckpt, weights_only=True)['state_dict']
    assert torch.equal(model.state_dict()['neck.attention_w.weight'],
                       state['neck.attention_w.weight'])
    inferencer = ImageClassificationInferencer(config, pretrained=ckpt, device='cpu')
    path = osp.join(tiny_digitbags, 'images', 'test', 'test_000001.png')
    result = inferencer(path)[0]
    assert result['pred_class'] in ('no_9', 'has_9') and 0 <= result['pred_score'] <= 1


def test_get_flops_through_mim(tiny_checkpoint):
    config, _ = tiny_checkpoint
    proc = subprocess.run([sys.executable, '-m', 'mim', 'run', 'mmpretrain', 'get_flops',
                           config, '--shape', '128', '128'], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'Flops' in out and 'Params' in out
    rows = {line.split('|')[1].strip(): line.split('|')[3].strip()
            for line in out.splitlines() if line.startswith('|  ') and line.count('|') >= 4}
    # both passes are counted: the glance backbone and the instance reader have FLOPs
    assert rows.get('backbone') and rows.get('reader')


def test_mmpretrain_analysis_tools_through_mim(tmp_path, tiny_checkpoint):
    """mmpretrain's confusion_matrix and analyze_logs run on a gattn config, checkpoint
    and training log."""
    config, ckpt = tiny_checkpoint
    matrix = tmp_path / 'matrix.pkl'
    proc = subprocess.run([sys.executable, '-m', 'mim', 'run', 'mmpretrain', 'confusion_matrix',
                           config, ckpt, '--out', str(matrix)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    counts = torch.as_tensor(pickle.load(open(matrix, 'rb')))
    assert counts.shape == (2, 2) and int(counts.sum()) == 8  # the 8 tiny test bags
    log = next(iter(glob.glob(osp.join(osp.dirname(ckpt), '*', 'vis_data', '2*.json'))))
    curve = tmp_path / 'curve.png'
    proc = subprocess.run([sys.executable, '-m', 'mim', 'run', 'mmpretrain', 'analyze_logs',
                           'plot_curve', log, '--keys', 'loss', '--out', str(curve)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert curve.stat().st_size > 1000


def test_infer_cli_with_truncated_image(tmp_path, tiny_checkpoint, tiny_digitbags):
    config, ckpt = tiny_checkpoint
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for i in range(3):
        src = osp.join(tiny_digitbags, 'images', 'test', f'test_00000{i}.png')
        (folder / f'ok{i}.png').write_bytes(open(src, 'rb').read())
    data = open(osp.join(tiny_digitbags, 'images', 'test', 'test_000004.png'), 'rb').read()
    # a long name with brackets: printed whole, not wrapped and not read as markup
    broken = folder / 'broken [slide 7] of a scan series with a long name.png'
    broken.write_bytes(data[:len(data) // 3])
    out = tmp_path / 'results.json'
    proc = subprocess.run([sys.executable, 'tools/infer.py', config, ckpt, str(folder),
                           '--out', str(out), '--batch-size', '2', '--device', 'cpu'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert str(broken) in proc.stderr
    results = json.load(open(out))
    assert sorted(osp.basename(r['image']) for r in results['results']) == \
        ['ok0.png', 'ok1.png', 'ok2.png']
    assert [f['image'] for f in results['failures']] == [str(broken)]
    r = results['results'][0]
    assert r['pred_class'] in ('no_9', 'has_9') and len(r['boxes']) == 4
    assert all(0 <= v <= 128 for box in r['boxes'] for v in box)


def test_visualize_attention_cli(tmp_path, tiny_checkpoint, tiny_digitbags):
    config, ckpt = tiny_checkpoint
    src = osp.join(tiny_digitbags, 'images', 'val')
    proc = subprocess.run([sys.executable, 'tools/visualize_attention.py', config, ckpt, src,
                           '--out-dir', str(tmp_path / 'vis'), '--device', 'cpu'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(os.listdir(tmp_path / 'vis'))
    assert len(files) == 8 and files[0] == 'val_000000.png'
    img = np.asarray(Image.open(tmp_path / 'vis' / files[0]))
    assert img.shape[1] == 128 and img.shape[0] > 128


def test_attention_hook_writes_files(tmp_path, tiny_digitbags):
    base = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')
    cfg = tmp_path / 'hook_cfg.py'
    cfg.write_text(f"_base_ = ['{base}']\n"
                   "custom_hooks = [dict(type='AttentionVisualizationHook', num_samples=3)]\n")
    opts = [f'{k}_dataloader.dataset.data_root={tiny_digitbags}' for k in ('train', 'val', 'test')]
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', 'train_cfg.max_epochs=1', *opts],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / 'w' / 'attention' / 'val_epoch_1'
    assert sorted(os.listdir(folder)) == [f'val_attention_{i}.png' for i in range(3)]
    vis = [f for d, _, fs in os.walk(tmp_path / 'w') for f in fs if 'vis_image' in d]
    assert any(f.startswith('val_attention_0') for f in vis)


def test_onnx_export_matches_pytorch(tmp_path, tiny_checkpoint, tiny_digitbags):
    ort = pytest.importorskip('onnxruntime')
    config, ckpt = tiny_checkpoint
    out = tmp_path / 'model.onnx'
    proc = subprocess.run([sys.executable, 'tools/deployment/export_onnx.py', config, ckpt,
                           '--out', str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from tools.deployment.export_onnx import build_export_model
    wrapper = build_export_model(config, ckpt)
    img = np.asarray(Image.open(osp.join(tiny_digitbags, 'images', 'test', 'test_000002.png')))
    x = torch.from_numpy(np.repeat(img[None, None], 3, 1).astype(np.float32))
    with torch.no_grad():
        expected = wrapper(x).numpy()
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    got = session.run(None, {'images': x.numpy()})[0]
    assert got.shape == expected.shape == (1, 2)
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize('selector', ['ThresholdSelector', 'SampleSelector'])
def test_onnx_export_refuses_a_selector_by_name(tiny_checkpoint, selector):
    from mmengine.config import Config

    from tools.deployment.export_onnx import build_export_model
    config, ckpt = tiny_checkpoint
    cfg = Config.fromfile(config)
    cfg.model.sampler.test_cfg.selector = dict(type=selector)
    with pytest.raises(ValueError, match=f'test selector {selector} cannot be exported'):
        build_export_model(cfg, ckpt)


@pytest.mark.parametrize('shape', [(128, 512), (4000, 16), (512, 128)])
def test_boxes_stay_inside_non_square_images(tiny_checkpoint, shape):
    """Padding added by ResizeToCanvas is never chosen and never boxed: every box, in
    original pixels, lies inside the image."""
    from gattn_mm.apis import GattnInferencer
    config, ckpt = tiny_checkpoint
    inferencer = GattnInferencer(config, pretrained=ckpt, device='cpu')
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    result = inferencer([image])[0]
    boxes = np.asarray(result['boxes'])
    H, W = shape
    assert boxes.shape == (4, 4)
    assert (boxes[:, [0, 1]] >= -1e-3).all()
    assert (boxes[:, 2] <= W + 1e-3).all() and (boxes[:, 3] <= H + 1e-3).all(), boxes


def test_sampler_masks_padding_cells_and_clamps_to_the_extent():
    from gattn_mm.models import InstanceSampler
    s = InstanceSampler(num_instances=3, crop_size=4, box_size=40)
    s.eval()
    attn = torch.zeros(1, 4, 4)
    attn[0, 3, 3] = 0.9  # a padding cell (the image covers 50 x 30 of 64 x 64)
    attn[0, 0, 0] = attn[0, 1, 1] = attn[0, 2, 0] = 0.1 / 3
    sel, boxes = s(attn, (64, 64), torch.tensor([[50., 30.]]))
    assert sorted(sel.index[0].tolist()) == [0, 5, 8]  # never cell (3, 3)
    assert (boxes[0, :, 2] <= 30 + 1e-4).all() and (boxes[0, :, 3] <= 50 + 1e-4).all()
    assert torch.allclose(boxes[0, :, 2] - boxes[0, :, 0], torch.tensor(30.))  # shrunk


def test_tools_test_draws_without_building_the_train_data(tmp_path, tiny_checkpoint,
                                                           tiny_digitbags):
    """The DigitBags config's AttentionVisualizationHook in a test-only run: only the
    test data root exists (a new user's tools/test.py); the drawings go to attention/test/."""
    config, ckpt = tiny_checkpoint
    missing = str(tmp_path / 'no_such_data')
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', f'train_dataloader.dataset.data_root={missing}',
         f'val_dataloader.dataset.data_root={missing}',
         f'test_dataloader.dataset.data_root={tiny_digitbags}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(os.listdir(tmp_path / 'w' / 'attention' / 'test')) == 4


def test_results_and_overlays_say_what_decided(tmp_path, tiny_checkpoint, tiny_digitbags):
    """The inferencer and tools/infer.py give each instance's class probabilities and
    evidence beside its attention, the fused head's weights, and name the instance
    that decided (a presence task: the one of most evidence); the overlay draws it red."""
    from gattn_mm.apis import GattnInferencer
    from tools import infer
    config, ckpt = tiny_checkpoint
    path = osp.join(tiny_digitbags, 'images', 'test', 'test_000000.png')
    image = np.asarray(Image.open(path).convert('RGB'))
    inferencer = GattnInferencer(config, pretrained=ckpt, device='cpu')
    result = inferencer([image[..., ::-1].copy()])[0]
    evidence = result['instance_evidence']
    assert evidence.shape == (4,) and result['deciding_instances'].tolist() == \
        [int(evidence.argmax())]
    assert result['instance_probs'].shape == (4, 2) and 'instance_labels' not in result
    assert result['fusion_weights'].sum() == pytest.approx(1.0, abs=1e-5)
    sample = inferencer([image[..., ::-1].copy()], return_datasamples=True)[0]
    drawn = inferencer.draw(image, sample)
    decided = int(result['deciding_instances'][0])
    x1, y1, x2, y2 = (int(round(v)) for v in result['boxes'][decided])
    edge = drawn[y1, x1:x2 - 1]  # the top edge of the deciding box is red
    assert (edge[:, 0] == 255).mean() > 0.5 and (edge[:, 1] == 0).mean() > 0.5
    out = tmp_path / 'r.json'
    assert infer.main([config, ckpt, path, '--out', str(out), '--device', 'cpu']) == 0
    row = json.load(open(out))['results'][0]
    assert row['deciding_instances'] == [decided]
    assert row['instance_evidence'] == pytest.approx(evidence.tolist(), abs=1e-3)
    assert np.array(row['instance_probs']).shape == (4, 2)


def test_overlay_marks_every_vote_for_the_predicted_class():
    """Without an "absent" class every instance that reads the predicted class is a
    deciding one: all drawn red, each box labelled with the class it reads."""
    from mmpretrain.structures import DataSample
    from gattn_mm.visualization.attention_visualizer import instance_fields
    image = np.full((100, 300, 3), 128, np.uint8)
    boxes = torch.tensor([[10., 10., 60., 60.], [110., 10., 160., 60.],
                          [210., 10., 260., 60.]])
    sample = DataSample(boxes=boxes, instance_scores=torch.tensor([0.5, 0.3, 0.2]),
                        instance_evidence=torch.tensor([-0.1, -0.2, -0.1]),
                        instance_labels=torch.tensor([7, 3, 7]),
                        deciding_instances=torch.tensor([0, 2]))
    fields = instance_fields(sample, [str(c) for c in range(10)])
    assert fields['instance_names'] == ['7', '3', '7']
    drawn = draw_attention(image, np.zeros((2, 6), np.float32), boxes, sample.instance_scores,
                           'pred: 7', show_crops=False, **fields)
    red = [(drawn[y1 + 1, x1 + 5:x2 - 5] == [255, 0, 0]).all(-1).mean() > 0.5
           for x1, y1, x2, y2 in boxes.int().tolist()]
    assert red == [True, False, True]


def test_overlay_caption_single_and_multi_label():
    from mmpretrain.structures import DataSample

    from gattn_mm.visualization.attention_visualizer import caption_of
    single = DataSample().set_pred_score(torch.tensor([0.1, 0.9])).set_pred_label(1)
    assert caption_of(single, ['no_9', 'has_9']) == 'pred: has_9 (0.90)'
    multi = DataSample().set_pred_score(torch.tensor([0.7, 0.2, 0.6])) \
        .set_pred_label(torch.tensor([0, 2]))
    assert caption_of(multi) == 'pred: 0 (0.70), 2 (0.60)'
    none = DataSample().set_pred_score(torch.tensor([0.1, 0.2])) \
        .set_pred_label(torch.tensor([], dtype=torch.long))
    assert caption_of(none) == 'pred: none'
