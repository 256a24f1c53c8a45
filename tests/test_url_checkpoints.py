"""Checkpoints given by URL load with the safe unpickler and a hash check, through
mmengine's loader inside gattn-mm's runtime (``safe_checkpoints``) or by the
``gattn-safe:`` scheme, and through the tools and APIs built on it (served on loopback
HTTP)."""
import contextlib
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
from gattn_mm.runtime import (GATTN_SCHEME, CheckpointReadError, UnsafeCheckpointError,
                              safe_checkpoints)

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


@pytest.fixture()
def runtime():
    """gattn-mm's checkpoint runtime, as the tools enter it."""
    with safe_checkpoints():
        yield


def hostile_file(folder, marker, name='evil.pth'):
    torch.save({'state_dict': {}, 'meta': Hostile(str(marker))}, folder / name)
    return name


def test_hostile_url_is_refused_by_the_loader_and_init_cfg(tmp_path, served):
    """Inside the runtime a plain URL, and anywhere a ``gattn-safe:`` URL, is refused by
    mmengine's load_checkpoint and by init_cfg Pretrained, also from the cache."""
    from mmengine.runner import load_checkpoint

    from mmpretrain.registry import MODELS
    folder, base = served
    marker = tmp_path / 'pwned'
    url = f'{base}/{hostile_file(folder, marker)}'
    for given, runtime in ((url, True), (GATTN_SCHEME + url, False)):
        with safe_checkpoints() if runtime else contextlib.nullcontext():
            with pytest.raises(UnsafeCheckpointError, match=url):
                load_checkpoint(torch.nn.Linear(2, 2), given, map_location='cpu')
            # a second time from the download cache: still refused
            with pytest.raises(UnsafeCheckpointError, match='cached as'):
                load_checkpoint(torch.nn.Linear(2, 2), given, map_location='cpu')
            backbone = MODELS.build(dict(type='ResNet', depth=18, init_cfg=dict(
                type='Pretrained', checkpoint=given, prefix='backbone')))
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


def test_hash_in_the_name_is_checked_on_download_and_in_the_cache(tmp_path, served, runtime):
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


def test_a_url_without_hash_is_cached_by_the_whole_url(tmp_path, served, runtime):
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


def test_published_checkpoint_by_url_matches_the_local_file(served, runtime):
    from mmengine.runner import CheckpointLoader
    folder, base = served
    (folder / PUBLISHED).write_bytes(open(osp.join(ROOT, 'checkpoints', PUBLISHED), 'rb').read())
    remote = CheckpointLoader.load_checkpoint(f'{base}/{PUBLISHED}', map_location='cpu')
    local = torch.load(osp.join(ROOT, 'checkpoints', PUBLISHED), weights_only=True)
    assert remote['state_dict'].keys() == local['state_dict'].keys()
    assert all(torch.equal(remote['state_dict'][k], v) for k, v in local['state_dict'].items())


@pytest.mark.parametrize('content', [b'', b'hello world', 'half'])
def test_unreadable_checkpoint_names_the_file(tmp_path, content, runtime):
    from mmengine.runner import load_checkpoint

    path = tmp_path / 'bad.pth'
    if content == 'half':
        data = open(osp.join(ROOT, 'checkpoints', PUBLISHED), 'rb').read()
        content = data[:len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match=f"cannot read checkpoint '{path}'"):
        load_checkpoint(torch.nn.Linear(2, 2), str(path), map_location='cpu')


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
def test_damaged_checkpoints_raise_one_error_naming_the_file(tmp_path):
    """100 byte flips and truncations of a tiny checkpoint (seeded): each loads, with a
    state_dict of tensors, or raises CheckpointReadError / UnsafeCheckpointError naming
    the file, never a raw IndexError, TypeError, struct.error, ..."""
    import random

    from gattn_mm.runtime import safe_torch_load
    path = tmp_path / 'tiny.pth'
    torch.save({'state_dict': {'a.weight': torch.arange(6.).view(2, 3), 'a.bias': torch.zeros(2)},
                'meta': {'epoch': 1, 'classes': ['x', 'y']}}, path)
    data, rng, refused = path.read_bytes(), random.Random(0), 0
    for i in range(100):
        damaged = bytearray(data)
        if rng.random() < 0.2:
            damaged = damaged[:rng.randrange(len(damaged))]
        else:
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        (tmp_path / 'bad.pth').write_bytes(damaged)
        try:
            loaded = safe_torch_load(str(tmp_path / 'bad.pth'), 'cpu', mmap=bool(i % 2))
        except (CheckpointReadError, UnsafeCheckpointError) as err:
            assert str(tmp_path / 'bad.pth') in str(err), (i, err)
            refused += 1
        else:
            assert all(isinstance(v, torch.Tensor) for v in loaded['state_dict'].values())
    assert refused > 50


@pytest.mark.parametrize('state_dict, got', [([1, 2], 'a list'), ({'w': 3}, "'w': int"),
                                             ({1: torch.zeros(2)}, '1: Tensor')])
def test_a_state_dict_must_map_names_to_tensors(tmp_path, state_dict, got, runtime):
    from mmengine.runner import load_checkpoint
    path = tmp_path / 'odd.pth'
    torch.save({'state_dict': state_dict}, path)
    with pytest.raises(CheckpointReadError, match=f"checkpoint '{path}': its state_dict should "
                                                  f'map parameter names .* got {got}'):
        load_checkpoint(torch.nn.Linear(2, 2), str(path), map_location='cpu')


def test_every_checkpoint_scheme_loads_safely_or_is_refused(tmp_path, monkeypatch):
    """Inside the runtime (and behind ``gattn-safe:`` outside it): open-mmlab:// (a file
    of mmengine's home), s3:// and petrel:// read with weights_only; pavi:// and a
    scheme another package registers are refused."""
    import io

    import mmengine.fileio
    from mmengine.runner import CheckpointLoader
    from mmengine.runner import checkpoint as mmengine_checkpoint

    from gattn_mm.runtime.loaders import SAFE_LOADERS
    marker = tmp_path / 'pwned'
    hostile_file(tmp_path, marker)
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'good.pth')
    monkeypatch.setattr(mmengine_checkpoint, '_get_mmengine_home', lambda: str(tmp_path))
    monkeypatch.setattr(mmengine_checkpoint, 'get_external_models',
                        lambda: {'evil': 'evil.pth', 'good': 'good.pth'})

    class Bucket:
        def get(self, filename):
            return (tmp_path / osp.basename(filename)).read_bytes()
    monkeypatch.setattr(mmengine.fileio, 'get_file_backend', lambda *a, **k: Bucket())

    def unpickling_loader(filename, map_location=None):
        return torch.load(io.BytesIO((tmp_path / 'evil.pth').read_bytes()), weights_only=False)
    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))
    with safe_checkpoints():
        assert all(loader in SAFE_LOADERS for loader in CheckpointLoader._schemes.values())
    CheckpointLoader.register_scheme('other://', unpickling_loader)  # another package's
    for runtime, scheme in ((True, ''), (False, GATTN_SCHEME)):
        with safe_checkpoints() if runtime else contextlib.nullcontext():
            def load(path):
                return CheckpointLoader.load_checkpoint(scheme + path)
            for prefix in ('open-mmlab://', 'openmmlab://'):
                with pytest.raises(UnsafeCheckpointError, match=str(tmp_path / 'evil.pth')):
                    load(f'{prefix}evil')
                assert load(f'{prefix}good')['state_dict']['w'].sum() == 2
            with pytest.raises(CheckpointReadError, match="'nope' is not a model name"):
                load('open-mmlab://nope')
            for url in ('s3://bucket/evil.pth', 'petrel://bucket/evil.pth',
                        'ceph:s3://b/evil.pth'):
                with pytest.raises(UnsafeCheckpointError, match=f"checkpoint '{url}'"):
                    load(url)
            assert load('s3://b/good.pth')['state_dict']['w'].sum() == 2
            with pytest.raises(CheckpointReadError, match='pavi:// is not supported'):
                load('pavi://model/evil.pth')
            with pytest.raises(CheckpointReadError,
                               match=r"'other://x.pth': its scheme is read by "
                                     r'.*unpickling_loader, which gattn-mm'):
                load('other://x.pth')
    assert not marker.exists()


def test_nothing_unpickles_without_weights_only():
    """Every torch.load in the package and tools passes weights_only=True (the one
    weights_only=False is the legacy converter's explicit --trust-pickle), and none
    calls pickle.load."""
    import glob
    import re
    found = []
    for path in glob.glob(osp.join(ROOT, 'gattn_mm', '**', '*.py'), recursive=True) + \
            glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True):
        text = open(path, encoding='utf-8').read()
        for call in re.findall(r'torch\.load\((?:[^()]|\([^()]*\))*\)|pickle\.loads?\(', text):
            if 'weights_only=True' not in call and not (
                    path.endswith('convert_legacy_checkpoint.py') and 'weights_only=False' in call):
                found.append(f'{osp.relpath(path, ROOT)}: {call[:80]}')
    assert not found, found


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


def in_runtime(function, *args, **kwargs):
    with safe_checkpoints():
        return function(*args, **kwargs)


def _train_load_from(config, url, tmp_path):
    from tools import train
    train.main([config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                f'load_from={url}', 'train_cfg.max_epochs=1'])


@pytest.mark.parametrize('where', ['infer', 'visualize_attention', 'export_onnx', 'get_model',
                                   'get_model_gattn_safe', 'GattnInferencer', 'load_from'])
def test_hostile_url_is_refused_by_every_tool_and_api(tmp_path, served, tiny_config, where,
                                                      monkeypatch):
    """A checkpoint URL whose pickle would run code (create a marker file) is refused,
    naming the URL, by each tool and API that takes one, in-process; nothing is written
    and training does not start. mmpretrain's ``get_model`` reads a plain URL safely
    inside gattn-mm's runtime, and a ``gattn-safe:`` URL without it."""
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
        'get_model': lambda: in_runtime(get_model, config, pretrained=url, device='cpu'),
        'get_model_gattn_safe': lambda: get_model(config, pretrained=GATTN_SCHEME + url,
                                                  device='cpu'),
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


def test_a_published_model_by_name_is_read_safely_without_the_runtime(tmp_path, monkeypatch):
    """``mmpretrain.get_model(NAME, pretrained=True)`` of a published gattn model, no
    gattn-mm runtime entered: its weights are ``gattn-safe:URL``, so with no bundled
    copy a hostile file in torch.hub's cache under the published name is refused (its
    sha256 is not the one in its name) and never unpickled; mmengine's loaders stay
    its own throughout."""
    from mmengine.runner import CheckpointLoader
    from mmpretrain.apis import ModelHub, get_model

    import gattn_mm.runtime.downloads as downloads
    from gattn_mm.apis import release_url
    name = 'gattn_r18_digitbags'
    assert ModelHub.get(name).weights == GATTN_SCHEME + release_url(name)
    assert release_url(name).endswith('/' + PUBLISHED)
    monkeypatch.setattr(downloads, 'BUNDLED_DIR', str(tmp_path / 'none'))
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    marker = tmp_path / 'pwned'
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    hostile_file(tmp_path / 'hub' / 'checkpoints', marker, name=PUBLISHED)
    upstream = dict(CheckpointLoader._schemes)
    with pytest.raises(UnsafeCheckpointError, match='does not match the sha256'):
        get_model(name, pretrained=True, device='cpu')
    assert not marker.exists()
    assert dict(CheckpointLoader._schemes) == upstream
