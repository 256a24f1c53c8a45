"""Checkpoints given by URL load with the safe unpickler and a hash check, through
mmengine's loader and the tools and APIs built on it (served on loopback HTTP)."""
import hashlib
import http.server
import os
import os.path as osp
import subprocess
import sys
import threading

import pytest
import torch

import gattn_mm  # noqa: F401
from gattn_mm.compat import CheckpointReadError, UnsafeCheckpointError

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PUBLISHED = 'gattn_r18_digitbags_20261129-7edf335a.pth'


class Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))  # creates the marker file when unpickled


@pytest.fixture()
def served(tmp_path, monkeypatch):
    """(folder served on http://127.0.0.1:PORT, base URL); the torch hub cache in tmp."""
    folder = tmp_path / 'www'
    folder.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(folder), **k)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    torch.hub.set_dir(str(tmp_path / 'torch_home' / 'hub'))
    yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def hostile_file(folder, marker, name='evil.pth'):
    torch.save({'state_dict': {}, 'meta': Hostile(str(marker))}, folder / name)
    return name


def test_hostile_url_is_refused_by_the_loader_and_init_cfg(tmp_path, served):
    from mmengine.runner import load_checkpoint

    from mmpretrain.registry import MODELS
    folder, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{hostile_file(folder, marker)}'
    with pytest.raises(UnsafeCheckpointError, match=url):
        load_checkpoint(torch.nn.Linear(2, 2), url, map_location='cpu')
    # a second time from the download cache: still refused
    with pytest.raises(UnsafeCheckpointError, match='cached as'):
        load_checkpoint(torch.nn.Linear(2, 2), url, map_location='cpu')
    backbone = MODELS.build(dict(type='ResNet', depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=url, prefix='backbone')))
    with pytest.raises(UnsafeCheckpointError):
        backbone.init_weights()
    assert not marker.exists()


def test_hostile_url_is_refused_by_tools_test(tmp_path, served, tiny_checkpoint):
    folder, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{hostile_file(folder, marker)}'
    config, _ = tiny_checkpoint
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch_home'))
    proc = subprocess.run([sys.executable, 'tools/test.py', config, url, '--work-dir',
                           str(tmp_path / 'w')], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and 'Refusing to load checkpoint' in proc.stderr
    assert url in proc.stderr and not marker.exists()


def test_hash_in_the_name_is_checked_on_download_and_in_the_cache(tmp_path, served):
    from mmengine.runner import load_checkpoint
    folder, base = served
    model = torch.nn.Linear(2, 2)
    torch.save({'state_dict': model.state_dict()}, folder / 'w.pth')
    digest = hashlib.sha256((folder / 'w.pth').read_bytes()).hexdigest()
    good, bad = f'w_1-{digest[:8]}.pth', 'w_1-deadbeef.pth'
    for name in (good, bad):
        (folder / name).write_bytes((folder / 'w.pth').read_bytes())
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    with pytest.raises(CheckpointReadError, match=f'{base}/{bad}.*hash'):
        load_checkpoint(model, f'{base}/{bad}', map_location='cpu')
    assert not (cache / bad).exists()  # nothing kept
    load_checkpoint(model, f'{base}/{good}', map_location='cpu')  # good: loads
    assert (cache / good).exists()
    (cache / good).write_bytes(b'tampered' + (folder / 'w.pth').read_bytes())
    with pytest.raises(UnsafeCheckpointError, match='does not match the sha256'):
        load_checkpoint(model, f'{base}/{good}', map_location='cpu')


def test_a_url_without_hash_is_cached_by_the_whole_url(tmp_path, served):
    """Two servers (or two queries) serving another ``model.pth``: each URL gets its own
    weights, not the first download's; a missing file names the URL."""
    from mmengine.runner import CheckpointLoader
    folder, base = served
    for sub, value in (('a', 1.0), ('b', 2.0)):
        (folder / sub).mkdir()
        torch.save({'state_dict': {'w': torch.full((2,), value)}}, folder / sub / 'model.pth')
    for sub, value in (('a', 1.0), ('b', 2.0), ('a', 1.0)):  # the last from the cache
        loaded = CheckpointLoader.load_checkpoint(f'{base}/{sub}/model.pth', map_location='cpu')
        assert torch.equal(loaded['state_dict']['w'], torch.full((2,), value))
    with pytest.raises(CheckpointReadError, match=f'{base}/c/model.pth.*404'):
        CheckpointLoader.load_checkpoint(f'{base}/c/model.pth', map_location='cpu')


def test_published_checkpoint_by_url_matches_the_local_file(served):
    from mmengine.runner import CheckpointLoader
    folder, base = served
    (folder / PUBLISHED).write_bytes(open(osp.join(ROOT, 'checkpoints', PUBLISHED), 'rb').read())
    remote = CheckpointLoader.load_checkpoint(f'{base}/{PUBLISHED}', map_location='cpu')
    local = torch.load(osp.join(ROOT, 'checkpoints', PUBLISHED), weights_only=True)
    assert remote['state_dict'].keys() == local['state_dict'].keys()
    assert all(torch.equal(remote['state_dict'][k], v) for k, v in local['state_dict'].items())


@pytest.mark.parametrize('content', [b'', b'hello world', 'half'])
def test_unreadable_checkpoint_names_the_file(tmp_path, content):
    from mmengine.runner import load_checkpoint

    from gattn_mm.compat import CheckpointReadError
    path = tmp_path / 'bad.pth'
    if content == 'half':
        data = open(osp.join(ROOT, 'checkpoints', PUBLISHED), 'rb').read()
        content = data[:len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match=f"cannot read checkpoint '{path}'"):
        load_checkpoint(torch.nn.Linear(2, 2), str(path), map_location='cpu')


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory, tiny_digitbags):
    """tests/data/tiny_digitbags.py with its data roots set (no training): (config, image)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py'))
    for k in ('train', 'val', 'test'):
        cfg[f'{k}_dataloader'].dataset.data_root = tiny_digitbags
    path = str(tmp_path_factory.mktemp('url_cfg') / 'tiny.py')
    cfg.dump(path)
    return path, osp.join(tiny_digitbags, 'images', 'test', 'test_000000.png')


def _train_load_from(config, url, tmp_path):
    from tools import train
    train.main([config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                f'load_from={url}', 'train_cfg.max_epochs=1'])


@pytest.mark.parametrize('where', ['infer', 'visualize_attention', 'export_onnx', 'get_model',
                                   'GattnInferencer', 'load_from'])
def test_hostile_url_is_refused_by_every_tool_and_api(tmp_path, served, tiny_config, where,
                                                      monkeypatch):
    """A checkpoint URL whose pickle would run code (create a marker file) is refused,
    naming the URL, by each tool and API that takes one, in-process; nothing is written
    and training does not start."""
    import re

    from mmpretrain.apis import get_model

    from gattn_mm.apis import GattnInferencer
    from tools import infer, visualize_attention
    from tools.deployment import export_onnx
    folder, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{hostile_file(folder, marker)}'
    config, image = tiny_config
    monkeypatch.setenv('LOCAL_RANK', '0')  # what tools/train.py sets, undone afterwards
    tools = {
        'infer': lambda: infer.main([config, url, image, '--out', str(tmp_path / 'r.json'),
                                     '--device', 'cpu']),
        'visualize_attention': lambda: visualize_attention.main(
            [config, url, image, '--out-dir', str(tmp_path / 'vis'), '--device', 'cpu']),
        'export_onnx': lambda: export_onnx.main([config, url, '--out', str(tmp_path / 'm.onnx')]),
        'load_from': lambda: _train_load_from(config, url, tmp_path),
    }
    apis = {
        'get_model': lambda: get_model(config, pretrained=url, device='cpu'),
        'GattnInferencer': lambda: GattnInferencer(config, pretrained=url, device='cpu'),
    }
    if where in tools:  # one line naming the URL, no traceback
        with pytest.raises(SystemExit) as exit_info:
            tools[where]()
        message = str(exit_info.value.code)
        assert message.startswith(f'error: checkpoint {url}: Refusing to load checkpoint '
                                  f"'{url} (cached as "), message
    else:
        with pytest.raises(UnsafeCheckpointError, match=re.escape(f"'{url} (cached as ")):
            apis[where]()
    assert not marker.exists()
    assert not [p for p in ('r.json', 'vis', 'm.onnx') if (tmp_path / p).exists()]
    assert not list(tmp_path.glob('w/**/*.pth'))  # training saved nothing
