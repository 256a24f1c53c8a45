"""Small odd inputs get a clear answer: an empty image, a pathlib.Path, a TIFF with no
page, paths with spaces through the shell launchers, an ONNX graph run at every batch
it declares (a dynamic batch), a legacy (non-zip) checkpoint given to --resume."""
import os
import os.path as osp
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gattn_mm.datasets.slides import SlideError, open_slide
from gattn_mm.datasets.transforms import ImageReadError, read_image
from gattn_mm.datasets.transforms.loading import to_rgb_uint8

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
CHECKPOINT = osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_20261129-7edf335a.pth')
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')


@pytest.fixture(scope='module')
def inferencer():
    from gattn_mm.apis import GattnInferencer
    return GattnInferencer(CONFIG, pretrained=CHECKPOINT, device='cpu')


@pytest.mark.parametrize('shape', [(0, 0), (0, 7), (7, 0), (0, 0, 3), (5, 0, 4)])
def test_an_empty_image_is_refused_by_name(inferencer, shape):
    with pytest.raises(ImageReadError, match=r'<array>: an empty image \('):
        to_rgb_uint8(np.zeros(shape, np.uint8))
    with pytest.raises(ImageReadError, match='an empty image'):
        inferencer(np.zeros(shape, np.uint8))


def test_a_path_object_is_a_path(inferencer, tmp_path):
    folder = tmp_path / 'bags'
    folder.mkdir()
    Image.fromarray(np.full((512, 512), 140, np.uint8)).save(folder / 'a.png')
    by_str = inferencer(str(folder / 'a.png'))[0]
    by_path = inferencer(folder / 'a.png')[0]
    assert by_path['pred_label'] == by_str['pred_label']
    assert np.allclose(by_path['pred_scores'], by_str['pred_scores'])
    assert len(inferencer([folder / 'a.png', str(folder / 'a.png')])) == 2
    folder_results = inferencer(folder)  # a folder, as the tools expand it
    assert len(folder_results) == 1
    assert np.allclose(folder_results[0]['pred_scores'], by_str['pred_scores'])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no images in the folder'):
        inferencer(tmp_path / 'empty')


def test_a_tiff_without_pages_is_refused_by_name(tmp_path):
    path = tmp_path / 'nopages.tif'
    path.write_bytes(b'II*\0\0\0\0\0')  # a TIFF header whose first IFD offset is 0
    with pytest.raises(ImageReadError, match='nopages.tif: a TIFF without any image'):
        read_image(str(path))
    with pytest.raises(SlideError, match='nopages.tif: a TIFF without any image'):
        open_slide(str(path), 10 ** 8)


@pytest.mark.parametrize('tags', [[], [(256, 0), (257, 0)]],
                         ids=['no tags', 'width and height 0'])
def test_a_tiff_page_that_declares_no_image_is_refused_by_name(tmp_path, tags):
    # one IFD whose entries (tag, value as SHORT) give no image size: not "a stack"
    path = tmp_path / 'noimage.tif'
    entries = b''.join(struct.pack('<HHII', tag, 3, 1, value) for tag, value in tags)
    path.write_bytes(b'II*\0' + struct.pack('<I', 8) + struct.pack('<H', len(tags))
                     + entries + struct.pack('<I', 0))
    expected = 'noimage.tif: a TIFF whose first page declares no image'
    with pytest.raises(ImageReadError, match=expected):
        read_image(str(path))
    with pytest.raises(SlideError, match=expected):
        open_slide(str(path), 10 ** 8)


def stub(folder, name):
    """An executable ``name`` that prints each argument on its own line."""
    path = folder / name
    path.write_text('#!/usr/bin/env bash\nfor a in "$@"; do echo "<$a>"; done\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.parametrize('script, fixed', [
    ('dist_train.sh', ['my config.py', '2']),
    ('dist_test.sh', ['my config.py', 'my ckpt.pth', '2']),
    ('slurm_train.sh', ['part', 'job', 'my config.py', 'work dir']),
    ('slurm_test.sh', ['part', 'job', 'my config.py', 'my ckpt.pth']),
])
def test_launchers_keep_every_argument_whole(tmp_path, script, fixed):
    env = dict(os.environ, PYTHON=stub(tmp_path, 'python stub'),
               PATH=f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    stub(tmp_path, 'srun')
    extra = ['--cfg-options', 'train_dataloader.dataset.data_root=/data/my data', '*']
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', script), *fixed, *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = [line[1:-1] for line in proc.stdout.splitlines()]
    for value in fixed[:-1] if script.startswith('dist') else fixed[2:]:
        assert value in args or any(a.endswith('=' + value) for a in args), (value, args)
    assert args[-3:] == extra  # the tool's own arguments, unsplit and unglobbed


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    from mmengine.config import Config
    from mmpretrain.apis import get_model
    folder = tmp_path_factory.mktemp('tiny')
    cfg = Config.fromfile(TINY)
    cfg.dump(str(folder / 'tiny.py'))
    torch.manual_seed(0)
    model = get_model(cfg)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=['no_9', 'has_9']))),
               folder / 'tiny.pth')
    return str(folder / 'tiny.py'), str(folder / 'tiny.pth')


@pytest.mark.parametrize('batch', [1, 3])
def test_onnx_runs_at_every_batch_it_declares(tmp_path, tiny_model, batch, capsys):
    """Traced at one batch, the graph declares a dynamic one and runs at others, with
    PyTorch's logits (the batch is read from the input, not fixed at the trace's)."""
    ort = pytest.importorskip('onnxruntime')
    from tools.deployment import export_onnx
    config, ckpt = tiny_model
    out = tmp_path / 'm.onnx'
    export_onnx.main([config, ckpt, '--out', str(out), '--batch-size', str(batch)])
    printed = capsys.readouterr().out
    other = 1 if batch > 1 else 2
    assert f'ONNX Runtime matches PyTorch at batch {batch} and {other}' in printed
    assert f'batch B dynamic, traced at {batch}' in printed
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == ['batch', 3, 128, 128]
    assert session.get_outputs()[0].shape == ['batch', 2]
    wrapper = export_onnx.build_export_model(config, ckpt)
    for size in (1, 2, 4, 7):
        x = torch.rand(size, 3, 128, 128) * 255
        with torch.no_grad():
            expected = wrapper(x).numpy()
        got = session.run(None, {'images': x.numpy()})[0]
        assert got.shape == (size, 2) and np.abs(got - expected).max() < 1e-4, size


def test_onnx_export_refuses_a_graph_fixed_to_its_traced_batch(tmp_path, tiny_model,
                                                               monkeypatch):
    """A graph that declares a dynamic batch but runs only at the traced one (a
    reshape fixed to it) is refused by the batch it fails at, and not written."""
    pytest.importorskip('onnxruntime')
    from tools.deployment import export_onnx
    config, ckpt = tiny_model
    real = torch.onnx.export

    class FixedBatch(torch.nn.Module):  # the model, its logits reshaped to a constant
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            logits = self.model(x)
            return logits.reshape(int(x.shape[0]), logits.shape[1])

    def fixed(model, args, f, **kw):
        return real(FixedBatch(model).eval(), args, f, **kw)
    monkeypatch.setattr(torch.onnx, 'export', fixed)
    out = tmp_path / 'm.onnx'
    with pytest.raises(SystemExit, match='the exported graph does not run at batch 1, '
                                         'which it declares: .*; nothing written'):
        export_onnx.main([config, ckpt, '--out', str(out)])
    assert not out.exists()


def test_onnx_export_refuses_a_graph_that_differs(tmp_path, tiny_model, monkeypatch):
    pytest.importorskip('onnxruntime')
    from tools.deployment import export_onnx
    config, ckpt = tiny_model
    real = torch.onnx.export

    def broken(model, args, f, **kw):  # the graph of another computation
        other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 128 * 128, 2))
        return real(other.eval(), args, f, **kw)
    monkeypatch.setattr(torch.onnx, 'export', broken)
    with pytest.raises(SystemExit, match='the exported graph does not compute the model'):
        export_onnx.main([config, ckpt, '--out', str(tmp_path / 'm.onnx')])
    assert not (tmp_path / 'm.onnx').exists()


def test_resume_takes_a_safe_legacy_checkpoint(tmp_path):
    from gattn_mm.apis.cli import check_resumable
    state = {'meta': {'epoch': 1}, 'message_hub': {}, 'optimizer': {},
             'state_dict': {'w': torch.zeros(2)}}
    torch.save(state, tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    torch.save(state, tmp_path / 'zip.pth')
    check_resumable(str(tmp_path / 'legacy.pth'))  # as load_from and test.py read it
    check_resumable(str(tmp_path / 'zip.pth'))
    weights = {'state_dict': {'w': torch.zeros(2)}}
    torch.save(weights, tmp_path / 'weights.pth', _use_new_zipfile_serialization=False)
    with pytest.raises(SystemExit, match='holds no training state'):
        check_resumable(str(tmp_path / 'weights.pth'))


def test_train_resumes_from_a_legacy_checkpoint(tmp_path, tiny_checkpoint):
    """tools/train.py --resume LEGACY.pth trains on from its epoch (the file is read
    safely, whole: mmap needs the zip format)."""
    import json

    from tools import train
    config, ckpt = tiny_checkpoint
    state = torch.load(ckpt, weights_only=True)
    torch.save(state, tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    train.main([config, '--work-dir', str(tmp_path / 'w'), '--resume',
                str(tmp_path / 'legacy.pth'), '--cfg-options', 'train_cfg.max_epochs=2'])
    resumed = torch.load(tmp_path / 'w' / 'epoch_2.pth', weights_only=True)
    assert resumed['meta']['epoch'] == 2 and not (tmp_path / 'w' / 'epoch_1.pth').exists()
    logs = [json.loads(line) for d, _, fs in os.walk(tmp_path / 'w') for f in fs
            if f.endswith('.json') and 'vis_data' in d for line in open(osp.join(d, f))]
    assert {entry.get('epoch') for entry in logs if 'loss' in entry} == {2}
