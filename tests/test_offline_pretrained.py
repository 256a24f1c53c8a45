"""Offline, an ``init_cfg`` ``Pretrained`` URL fails with one error that names the
URL, the file to put in torch.hub's cache and the options that do without the
download; nothing is downloaded (an unreachable loopback port, or the download
replaced by one that raises ``URLError``): inside gattn-mm's runtime (as the tools
load) or by the ``gattn-safe:`` scheme the configs use."""
import os.path as osp
import re
import socket
import urllib.error

import pytest
import torch

import gattn_mm  # noqa: F401  (the gattn-safe: scheme)
from gattn_mm.runtime import (GATTN_SCHEME, CheckpointDownloadError, CheckpointReadError,
                              safe_checkpoints)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CACHE_PATH = re.compile(r'Put the file at (\S+) \(')


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """torch.hub's folder in tmp (``$TORCH_HOME/hub``, as in a fresh process)."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv('TORCH_HUB', raising=False)
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    return tmp_path / 'torch_home' / 'hub'


@pytest.fixture()
def unreachable():
    """A base URL on a loopback port where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}'


@pytest.fixture()
def runtime():
    """gattn-mm's checkpoint runtime, as the tools enter it."""
    with safe_checkpoints():
        yield


def backbone_with(url: str):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(type='ResNet', depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=url, prefix='backbone')))


def assert_says_what_to_do(message: str, url: str, cache: str) -> None:
    assert url in message and 'could not be reached' in message
    assert f'Put the file at {cache} ' in message
    name = osp.basename(cache)
    assert f'--cfg-options model.backbone.init_cfg.checkpoint=/path/to/{name}' in message
    assert 'model.backbone.init_cfg=None' in message
    assert 'configs/gattn_fungi_cpu.py' in message
    assert '\n' not in message  # one line, as the tools print it


def test_unreachable_url_says_what_to_do_and_the_cache_path_is_read(hub, unreachable,
                                                                    runtime):
    """The error of an unreachable URL names it and the cache file; a file put at that
    exact path is then loaded with no network, checked as any Pretrained load."""
    url = f'{unreachable}/r18.pth'  # no hash in the name: cached under the URL's hash
    backbone = backbone_with(url)
    with pytest.raises(CheckpointDownloadError) as info:
        backbone.init_weights()
    message = str(info.value)
    assert isinstance(info.value, CheckpointReadError) and info.value.checkpoint == url
    cache = CACHE_PATH.search(message).group(1)
    assert cache.startswith(str(hub / 'checkpoints')) and cache.endswith('r18.pth')
    assert_says_what_to_do(message, url, cache)
    source = backbone_with(url)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               source.state_dict().items()}}, cache)
    backbone.init_weights()  # read from the cache: nothing listens at the URL
    for name, value in source.state_dict().items():
        assert torch.equal(backbone.state_dict()[name], value)


@pytest.mark.parametrize('config', ['gattn_fungi.py', 'gattn_breakhis.py',
                                    'gattn_slides.py'])
def test_the_imagenet_url_of_the_configs_offline(config, hub, monkeypatch):
    """The configs' own ResNet-50 URL (``gattn-safe:``, read safely with no runtime):
    the cache path is torch.hub's ``$TORCH_HOME/hub/checkpoints/<file name>``, as
    torch.hub and mmengine read it."""
    from mmengine.config import Config
    from mmengine.runner import CheckpointLoader

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    given = Config.fromfile(osp.join(ROOT, 'configs', config)).model.backbone.init_cfg.checkpoint
    assert given.startswith(GATTN_SCHEME + 'https://download.openmmlab.com/')
    url = given[len(GATTN_SCHEME):]
    with pytest.raises(CheckpointDownloadError) as info:
        CheckpointLoader.load_checkpoint(given, map_location='cpu')
    cache = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(url))
    assert cache == str(hub / 'checkpoints' / osp.basename(url))
    assert_says_what_to_do(str(info.value), url, cache)


def test_an_http_error_is_named_with_the_same_ways_out(hub, monkeypatch, runtime):
    def not_found(url, *args, **kwargs):
        raise urllib.error.HTTPError(url, 404, 'Not Found', {}, None)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', not_found)
    url = 'https://example.org/weights/r50-0123abcd.pth'
    with pytest.raises(CheckpointDownloadError, match=f'{url}: the server answered '
                       f'HTTP 404.*Put the file at .*r50-0123abcd.pth'):
        backbone_with(url).init_weights()


def test_tools_train_ends_with_the_message(tmp_path, hub, unreachable, tiny_digitbags,
                                           capsys):
    """tools/train.py: one line naming the URL (not the load_from file), no training."""
    from tools.train import main
    url = f'{unreachable}/resnet18-0123abcd.pth'
    opts = [f'{k}_dataloader.dataset.data_root={tiny_digitbags}'
            for k in ('train', 'val', 'test')]
    with pytest.raises(SystemExit) as info:
        main([osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py'), '--work-dir',
              str(tmp_path / 'work'), '--cfg-options', *opts,
              'model.backbone.init_cfg.type=Pretrained',
              f'model.backbone.init_cfg.checkpoint={url}'])
    message = str(info.value.code)
    assert message.startswith(f'error: cannot download checkpoint {url}: ')
    cache = str(hub / 'checkpoints' / 'resnet18-0123abcd.pth')
    assert_says_what_to_do(message, url, cache)
    assert not list((tmp_path / 'work').rglob('*.pth'))
