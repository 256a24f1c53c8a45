"""What to do when a checkpoint URL cannot be downloaded: the message of
:class:`gattn_mm.compat.CheckpointDownloadError`.

The ImageNet backbones of ``configs/gattn_fungi.py``, ``gattn_breakhis.py`` and
``gattn_slides.py`` come by URL through ``init_cfg=dict(type='Pretrained', ...)``;
offline, torch.hub's download fails with a bare ``URLError``. The message names the
URL, the exact file the loader reads instead (torch.hub's cache) and the options that
do without the download.
"""
import os.path as osp
from http.client import HTTPException
from urllib.error import HTTPError, URLError

# what a download raises when the server cannot be reached or refuses the file
NETWORK_ERRORS = (URLError, HTTPException, ConnectionError, TimeoutError)


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
