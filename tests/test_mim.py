"""mim integration: search, download (real HTTP from a loopback server), train, test."""
import hashlib
import http.server
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import threading

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mim(*args, env=None, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, '-m', 'mim', *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def metafile_models():
    with open(osp.join(ROOT, 'configs', 'metafile.yml')) as f:
        return yaml.safe_load(f)['Models']


def test_search_lists_every_model_in_model_zoo():
    proc = mim('search', 'gattn_mm')
    assert proc.returncode == 0, proc.stderr[-3000:]
    zoo = open(osp.join(ROOT, 'model_zoo.md')).read()
    names = [m['Name'] for m in metafile_models()]
    assert names
    for name in names:
        assert name in proc.stdout, f'{name} missing from mim search'
        assert name in zoo, f'{name} missing from model_zoo.md'


@pytest.fixture()
def loopback_release(tmp_path):
    """Serve the committed release assets (checkpoints/) over HTTP on 127.0.0.1."""
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=osp.join(ROOT, 'checkpoints'), **k)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def stage_installation(tmp_path, base_url):
    """A copy of the installed package's .mim tree whose Weights URLs point at
    ``base_url``. How the URL reaches the loopback server: mim reads Weights URLs
    from ``<location>/gattn_mm/.mim/model-index.yml`` of the *distribution* it finds
    first on sys.path; this staged tree (dist-info + .mim, no Python code, so
    ``import gattn_mm`` still finds the real package) is put first on PYTHONPATH of
    the mim subprocess. mim's own download code (requests over HTTP) runs unchanged."""
    site = tmp_path / 'site'
    mim_dir = site / 'gattn_mm' / '.mim'
    shutil.copytree(osp.join(ROOT, 'configs'), mim_dir / 'configs')
    shutil.copy(osp.join(ROOT, 'model-index.yml'), mim_dir / 'model-index.yml')
    meta_path = mim_dir / 'configs' / 'metafile.yml'
    text = meta_path.read_text()
    text = re.sub(r'https://github\.com/\S+?/releases/download/[^/\s]+', base_url, text)
    meta_path.write_text(text)
    info = site / 'gattn_mm-0.3.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: gattn-mm\nVersion: 0.3.0\n')
    return str(site)


@pytest.fixture(scope='module')
def default_test_split(tmp_path_factory):
    """The default DigitBags test split, regenerated with the default seed (by
    make_digitbags' main, in-process: no interpreter to start; no train or val bags)."""
    from tools.dataset_converters import make_digitbags
    data = tmp_path_factory.mktemp('digitbags')
    make_digitbags.main(['--out', str(data), '--num-train', '0', '--num-val', '0',
                         '--no-progress'])
    return data


@pytest.mark.parametrize('name', [m['Name'] for m in metafile_models()
                                  if m['Name'].startswith('gattn_r18_digitbags')])
def test_download_end_to_end_and_reproduce(tmp_path, loopback_release, default_test_split,
                                           name, monkeypatch):
    model = next(m for m in metafile_models() if m['Name'] == name)
    site = stage_installation(tmp_path, loopback_release)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([site, env.get('PYTHONPATH', '')])
    dest = tmp_path / 'dest'
    # cwd outside the repository: its gattn_mm.egg-info (editable install) would come
    # before PYTHONPATH on sys.path
    proc = mim('download', 'gattn_mm', '--config', model['Name'], '--dest', str(dest), env=env,
               cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ckpt_name = model['Weights'].split('/')[-1]
    ckpt = dest / ckpt_name
    assert ckpt.exists() and (dest / f"{model['Name']}.py").exists()
    # the hash check against the name (OpenMMLab: NAME_YYYYMMDD-<sha256[:8]>.pth)
    prefix = re.search(r'-([0-9a-f]{8})\.pth$', ckpt_name).group(1)
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest().startswith(prefix)
    # on the regenerated default test split (same seed), reproduce the published number
    # with the downloaded config and checkpoint (tools/test.py's main, in-process: its
    # command line runs as a subprocess in tests/test_tools.py and the benchmarks)
    from tools.test import main as test_tool
    data = default_test_split
    out = tmp_path / 'metrics.json'
    monkeypatch.chdir(ROOT)
    test_tool([str(dest / f"{model['Name']}.py"), str(ckpt), '--work-dir', str(tmp_path / 'w'),
               '--out', str(out), '--out-item', 'metrics',
               '--cfg-options', f'test_dataloader.dataset.data_root={data}'])
    metrics = json.load(open(out))
    published = model['Results'][0]['Metrics']['Top 1 Accuracy']
    assert metrics['accuracy/top1'] == pytest.approx(published, abs=0.01)


def test_mim_train_and_test(tmp_path, tiny_digitbags):
    cfg = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')
    opts = [f'{k}_dataloader.dataset.data_root={tiny_digitbags}' for k in ('train', 'val', 'test')]
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([ROOT, env.get('PYTHONPATH', '')])
    work = tmp_path / 'w'
    proc = mim('train', 'gattn_mm', cfg, '--work-dir', str(work), '--cfg-options',
               'train_cfg.max_epochs=1', *opts, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (work / 'epoch_1.pth').exists()
    proc = mim('test', 'gattn_mm', cfg, '--checkpoint', str(work / 'epoch_1.pth'),
               '--work-dir', str(tmp_path / 't'), '--cfg-options', *opts, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'accuracy/top1' in proc.stdout + proc.stderr


def test_model_hub_lists_and_builds_released_models_offline(tmp_path, monkeypatch):
    """``import gattn_mm`` registers the model index with mmpretrain's ModelHub:
    ``list_models('gattn*')`` names every released model, mmpretrain's own models stay
    listed, and ``get_model(NAME, pretrained=True)`` loads the released weights with
    the network unreachable: the release URL resolves to the file that travels with
    the package (hash checked), nothing is downloaded."""
    import socket

    import torch

    import gattn_mm  # noqa: F401
    from gattn_mm.apis import GattnInferencer
    from mmpretrain.apis import get_model, list_models
    names = [m['Name'] for m in metafile_models()]
    assert sorted(list_models('gattn*')) == sorted(names)
    assert 'resnet18_8xb32_in1k' in list_models('resnet18*')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    torch.hub.set_dir(str(tmp_path / 'torch_home' / 'hub'))

    def no_network(*args, **kwargs):
        raise OSError('network unreachable (test)')
    monkeypatch.setattr(socket, 'create_connection', no_network)
    monkeypatch.setattr(socket.socket, 'connect', no_network)
    for model_meta in metafile_models():
        model = get_model(model_meta['Name'], pretrained=True, device='cpu')
        ckpt = torch.load(osp.join(ROOT, 'checkpoints', model_meta['Weights'].split('/')[-1]),
                          map_location='cpu', weights_only=True)['state_dict']
        state = model.state_dict()
        assert set(ckpt) == set(state)
        for key, value in ckpt.items():
            assert torch.equal(state[key], value), key
    inferencer = GattnInferencer(names[0], pretrained=True, device='cpu')
    assert inferencer.model.instance_head is not None
    assert not list((tmp_path / 'torch_home').rglob('*.pth'))  # nothing downloaded


def test_infer_by_model_name_offline(tmp_path, monkeypatch):
    """``tools/infer.py NAME IMAGE`` uses the published config and weights (bundled,
    hash-checked, no download; its main in-process, TORCH_HOME a fresh folder)."""
    import numpy as np
    import torch.hub
    from PIL import Image

    from tools.infer import main as infer
    image = tmp_path / 'bag.png'
    Image.fromarray(np.full((512, 512), 140, np.uint8)).save(image)
    out = tmp_path / 'r.json'
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)  # as in a new process: TORCH_HOME/hub
    assert torch.hub.get_dir() == str(tmp_path / 'torch_home' / 'hub')
    monkeypatch.chdir(ROOT)
    assert infer(['gattn_r18_digitbags', str(image), '--out', str(out), '--device', 'cpu']) == 0
    result = json.load(open(out))['results'][0]
    assert result['pred_class'] in ('no_9', 'has_9') and len(result['boxes']) == 24
    assert not list((tmp_path / 'torch_home').rglob('*.pth'))


def test_tools_download_offline(tmp_path, monkeypatch, capsys):
    """tools/download.py copies a bundled model (hash-checked) with its config, with
    the network unreachable; an unknown name or an unreachable URL is one clear line."""
    import urllib.error

    import torch.hub

    import gattn_mm.runtime.downloads as downloads
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import download

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError('network unreachable')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    name = metafile_models()[0]['Name']
    assert download.main([name, '--dest', str(tmp_path / 'dl')]) == 0
    ckpt, = (tmp_path / 'dl').glob('*.pth')
    bundled = osp.join(downloads.BUNDLED_DIR, ckpt.name)
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == \
        hashlib.sha256(open(bundled, 'rb').read()).hexdigest()
    assert (tmp_path / 'dl' / f'{name}.py').read_text().count('GatedAttentionClassifier')
    assert download.main(['gattn_nope', '--dest', str(tmp_path / 'dl')]) == 2
    assert 'unknown model(s) gattn_nope' in capsys.readouterr().err
    monkeypatch.setattr(downloads, 'BUNDLED_DIR', str(tmp_path / 'none'))
    assert download.main([name, '--dest', str(tmp_path / 'dl2')]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'not bundled with this install' in err[0] and \
        'network unreachable' in err[0]


def test_tools_download_writes_atomically_and_checks_dest(tmp_path, monkeypatch, capsys):
    """A failed write (full disk) names the file, leaves no partial file and keeps an
    older one whole; a --dest that cannot be a folder is refused naming --dest."""
    import errno

    from gattn_mm.runtime import AtomicLocalBackend
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import download
    name = metafile_models()[0]['Name']
    dest = tmp_path / 'dl'
    dest.mkdir()
    (dest / f'{name}.py').write_text('old')
    real_put = AtomicLocalBackend.put

    def full_disk(self, data, path):
        if str(path).endswith('.py'):  # the checkpoint written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_put(self, data, path)
    monkeypatch.setattr(AtomicLocalBackend, 'put', full_disk)
    assert download.main([name, '--dest', str(dest)]) == 1
    err = capsys.readouterr().err
    assert f'cannot write {dest / name}.py: No space left on device' in err, err
    assert 'not bundled' not in err  # not reported as a download problem
    assert (dest / f'{name}.py').read_text() == 'old'
    assert not [p for p in os.listdir(dest) if p.endswith(('.tmp', '.part'))]
    (tmp_path / 'file').write_text('')
    assert download.main([name, '--dest', str(tmp_path / 'file' / 'dl')]) == 2
    assert f'--dest {tmp_path / "file" / "dl"}: cannot be created' in capsys.readouterr().err
