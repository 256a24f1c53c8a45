"""Checkpoints by URL: downloaded once, hash-checked, offline first, and a failed
download that says what to do.

mmengine's ``http(s)://`` loader (also behind ``mmcls://`` and ``torchvision://``) goes
through ``torch.hub.load_state_dict_from_url``, which unpickles fully and trusts
whatever is in the download cache. :func:`download_checked` downloads into the same
cache (``torch.hub.get_dir()/checkpoints``) and checks the file's sha256 against the
hash prefix in its name (``NAME-<hex>.pth``, OpenMMLab's and PyTorch's convention) on
download and again on every load from the cache; :mod:`gattn_mm.runtime.loaders` then
reads it with :func:`~gattn_mm.runtime.safe_load.safe_torch_load`. A file name without
a hash does not identify its content (two servers, or ``?v=2``, can serve another
``model.pth``), so such a URL is cached under a folder named after the hash of the
whole URL instead of by name alone.

Offline first: a URL whose file name (with its hash) is one of the published
checkpoints that travel with the package (``gattn_mm/.mim/checkpoints``, the
repository's ``checkpoints/``) resolves to that file, its hash checked, with no
network. Offline, torch.hub's download fails with a bare ``URLError``; here a failed
download raises :class:`CheckpointDownloadError`, whose one-line message names the URL,
the exact file the loader reads instead (torch.hub's cache) and the options that do
without the download (the ImageNet backbones of ``configs/gattn_fungi.py``,
``gattn_breakhis.py`` and ``gattn_slides.py`` come by URL through ``init_cfg``).
"""
import hashlib
import os
import os.path as osp
import re
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

from .safe_load import CheckpointReadError, UnsafeCheckpointError

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
BUNDLED_DIR = osp.join(PACKAGE_DIR, '.mim', 'checkpoints')
HASH_IN_NAME = re.compile(r'-([a-f0-9]{6,64})\.[^.]+$')  # NAME-<sha256 prefix>.pth
# what a download raises when the server cannot be reached or refuses the file
NETWORK_ERRORS = (URLError, HTTPException, ConnectionError, TimeoutError)


class CheckpointDownloadError(CheckpointReadError):
    """A checkpoint URL (``checkpoint``) could not be downloaded: no network or an HTTP
    error; its message says what to do (:func:`offline_message`)."""

    def __init__(self, message: str, checkpoint: str):
        super().__init__(message)
        self.checkpoint = checkpoint


def offline_message(url: str, cached: str, err: Exception) -> str:
    """The error message for ``url`` failing to download to ``cached`` with ``err``.

    Args:
        url (str): the checkpoint's URL.
        cached (str): the file the loader reads when it exists (no download).
        err (Exception): one of :data:`NETWORK_ERRORS`.

    Returns:
        str: one line: the URL, the reason, then the ways out.
    """
    reason = (f'the server answered HTTP {err.code}' if isinstance(err, HTTPError) else
              'the network could not be reached')
    return (f'cannot download checkpoint {url}: {reason} ({type(err).__name__}: {err}). '
            f'Put the file at {cached} (torch.hub\'s cache, $TORCH_HOME/hub/checkpoints: '
            f'read from there without network); or give a local copy in place of the '
            f'URL, e.g. for the ImageNet backbone: --cfg-options '
            f'model.backbone.init_cfg.checkpoint=/path/to/{osp.basename(cached)}; or '
            f'train without ImageNet weights: --cfg-options model.backbone.init_cfg=None, '
            f'or the from-scratch CPU config configs/gattn_fungi_cpu.py')


def sha256_prefix_ok(path: str, prefix: str) -> bool:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest().startswith(prefix)


def download_checked(url: str, model_dir: str = None, progress: bool = False) -> str:
    """The cached file of ``url`` (downloaded first when absent), its sha256 checked
    against the hash prefix in its name when it has one."""
    from torch.hub import download_url_to_file, get_dir
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    match = HASH_IN_NAME.search(name)
    bundled = osp.join(BUNDLED_DIR, name)
    if match and osp.isfile(bundled) and sha256_prefix_ok(bundled, match.group(1)):
        return bundled
    if not match:  # the name says nothing about the content: one folder per URL
        model_dir = osp.join(model_dir, 'url-' + hashlib.sha256(url.encode()).hexdigest()[:16])
        os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, name)
    if not osp.exists(cached):
        try:  # torch checks the prefix on download and deletes a mismatching file
            download_url_to_file(url, cached, match.group(1) if match else None,
                                 progress=progress)
        except NETWORK_ERRORS as err:
            raise CheckpointDownloadError(offline_message(url, cached, err), url) from None
        except (OSError, RuntimeError, ValueError) as err:  # hash mismatch, disk
            raise CheckpointReadError(f'cannot download checkpoint {url}: '
                                      f'{type(err).__name__}: {err}') from None
    elif match and not sha256_prefix_ok(cached, match.group(1)):
        raise UnsafeCheckpointError(
            f'the cached checkpoint {cached!r} of {url} does not match the sha256 '
            f'prefix {match.group(1)!r} in its name; delete it to download it again')
    return cached
