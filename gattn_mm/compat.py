"""Adaptations to upstream behaviour, each with its reason: checkpoint loading and
distributed training here, checkpoint saving in :mod:`gattn_mm.checkpoint_saving`
(atomic writes; old checkpoints deleted only after the new one is saved).

1. **Safe checkpoint loading.** mmengine 0.10.x calls ``torch.load`` without
   ``weights_only``; on torch < 2.6 that unpickles anything (a checkpoint can run
   code), on torch >= 2.6 it is the safe loader but fails with an opaque message.
   :func:`load_from_local` always uses ``weights_only=True`` and turns a refusal, or
   any failure to read the file, into an error that names it; a ``state_dict`` must
   map names to tensors. There is no fallback to full unpickling; the one explicit
   opt-in for a trusted legacy file is converting it once with
   ``tools/model_converters/convert_legacy_checkpoint.py IN OUT --trust-pickle``.
   Runner checkpoints stay loadable because ``SafeCheckpointHook`` stores the
   message hub in plain types (see ``gattn_mm/engine/hooks``).
2. **Checkpoints by URL are loaded safely and checked.** mmengine's ``http(s)://``
   loader (also behind ``mmcls://``, ``torchvision://``) goes
   through ``torch.hub.load_state_dict_from_url``, which unpickles fully and trusts
   whatever is in the download cache. :func:`load_from_http` downloads into the same
   cache (``torch.hub.get_dir()/checkpoints``), checks the file's sha256 against the
   hash prefix in its name (``NAME-<hex>.pth``, OpenMMLab's and PyTorch's convention)
   on download and again on every load from the cache, and reads it with
   :func:`safe_torch_load`. A file name without a hash does not identify its content
   (two servers, or ``?v=2``, can serve another ``model.pth``), so such a URL is cached
   under a folder named after the hash of the whole URL instead of by name alone.
   Offline first: a URL whose file name (with its hash) is one of the published
   checkpoints that travel with the package (``gattn_mm/.mim/checkpoints``, the
   repository's ``checkpoints/``) resolves to that file, its hash checked, with no
   network. A failed download says what to do (:class:`CheckpointDownloadError`).
3. **Every other scheme is safe too, or refused.** mmengine's ``open-mmlab://``
   loader reads a name that maps to a file of mmengine's home with a bare
   ``torch.load``, as do ``s3://`` / ``petrel://`` and ``pavi://``: the first two
   are read with :func:`safe_torch_load` here, ``pavi://`` is refused (download the
   file), and so is any scheme another package registers (``SAFE_LOADERS`` lists
   those known to be safe).
4. **Distributed training without a GPU.** mmengine 0.10.7's ``init_dist`` calls
   ``torch.cuda.set_device`` unconditionally and the Runner wraps the model in DDP
   with ``device_ids=[LOCAL_RANK]``, both of which fail on a CPU-only machine.
   :func:`setup_cpu_distributed` starts a gloo process group before the Runner (so
   the Runner skips ``init_dist``) and asks for ``device_ids=None``. With CUDA
   nothing changes: mmengine initialises nccl itself.
"""
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import subprocess
from typing import IO, Any, Union
from urllib.parse import urlparse

import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_saving import AtomicLocalBackend, CheckpointHook  # noqa: F401  (installed)
from .offline_checkpoints import NETWORK_ERRORS, offline_message


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects outside PyTorch's ``weights_only`` allowlist."""


class CheckpointReadError(IOError):
    """A checkpoint file is empty, truncated or not a PyTorch checkpoint."""


class CheckpointDownloadError(CheckpointReadError):
    """A checkpoint URL (``checkpoint``) could not be downloaded: no network or an HTTP
    error; its message says what to do (:mod:`gattn_mm.offline_checkpoints`)."""

    def __init__(self, message: str, checkpoint: str):
        super().__init__(message)
        self.checkpoint = checkpoint


def safe_torch_load(filename: Union[str, IO[bytes]], map_location: Any = None,
                    source: str = None, mmap: bool = False) -> Any:
    """``torch.load(filename, weights_only=True)`` with an error naming the file (or
    ``source``, e.g. the URL it was downloaded from, or what a file object holds);
    a ``state_dict`` in it must map names to tensors (:func:`check_state_dict`)."""
    named = isinstance(filename, (str, os.PathLike))
    where = filename if source is None else f'{source} (cached as {filename})' if named \
        else source
    try:
        checkpoint = torch.load(filename, map_location=map_location, weights_only=True,
                                mmap=mmap)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()
        reason = next((line for line in reason if 'global' in line.lower()), reason[0]
                      if reason else 'unknown reason')
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {where!r}: it holds objects that '
            f'torch.load(weights_only=True) does not allow ({reason.strip()}). '
            f'gattn-mm never falls back to full unpickling, which can run arbitrary '
            f'code. If the file comes from a source you trust (e.g. an older toolkit), '
            f'convert it once with the explicit opt-in: python tools/model_converters/'
            f'convert_legacy_checkpoint.py {filename if named else "FILE"} OUT.pth '
            f'--trust-pickle') from None
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001  (a damaged zip or pickle raises many types)
        raise CheckpointReadError(
            f'cannot read checkpoint {where!r}: it is empty, truncated or not a PyTorch '
            f'checkpoint ({type(err).__name__}: {str(err)[:200]})') from None
    check_state_dict(checkpoint, where)
    return checkpoint


def check_state_dict(checkpoint: Any, where: str) -> None:
    """The ``state_dict`` of a checkpoint dict, when it has one, maps str to tensors."""
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        return
    state = checkpoint['state_dict']
    bad = [f'{k!r}: {type(v).__name__}' for k, v in state.items()
           if not isinstance(k, str) or not isinstance(v, torch.Tensor)] \
        if isinstance(state, dict) else [f'a {type(state).__name__}']
    if bad:
        raise CheckpointReadError(
            f'cannot read checkpoint {where!r}: its state_dict should map parameter names '
            f'(str) to tensors, got {", ".join(bad[:3])}{" ..." if len(bad) > 3 else ""}')


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file checkpoint loader, with the safe unpickler."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


BUNDLED_DIR = osp.join(osp.dirname(osp.abspath(__file__)), '.mim', 'checkpoints')
HASH_IN_NAME = re.compile(r'-([a-f0-9]{6,64})\.[^.]+$')  # NAME-<sha256 prefix>.pth


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


def load_from_http(filename: str, map_location: Any = None, model_dir: str = None,
                   progress: bool = False) -> Any:
    """mmengine's URL checkpoint loader, safe and hash-checked (item 2 above); in a
    distributed run rank 0 downloads first (as mmengine's loader does)."""
    rank, world_size = get_dist_info()
    path = download_checked(filename, model_dir, progress) if rank == 0 else None
    if world_size > 1:
        dist.barrier()
        if rank > 0:
            path = download_checked(filename, model_dir, progress)
    return safe_torch_load(path, map_location=map_location, source=filename)


CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)(load_from_http)
mmengine_checkpoint.load_from_http = load_from_http  # used by mmcls://, torchvision://


@CheckpointLoader.register_scheme(prefixes=('open-mmlab://', 'openmmlab://'), force=True)
def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """mmengine's ``open-mmlab://NAME`` loader: NAME resolved as upstream, to a URL
    (:func:`load_from_http`) or a file of mmengine's home (:func:`load_from_local`)."""
    name = filename.split('://', 1)[1]
    name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    urls = mmengine_checkpoint.get_external_models()
    if name not in urls:
        raise CheckpointReadError(f'cannot load checkpoint {filename!r}: {name!r} is not '
                                  f"a model name of mmengine's open-mmlab list")
    if urls[name].startswith(('http://', 'https://')):
        return load_from_http(urls[name], map_location=map_location)
    return load_from_local(osp.join(mmengine_checkpoint._get_mmengine_home(), urls[name]),
                           map_location)


@CheckpointLoader.register_scheme(prefixes=[r'(\S+\:)?s3://', r'(\S+\:)?petrel://'],
                                  force=True)
def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """mmengine's ``s3://`` / ``petrel://`` loader, with the safe unpickler."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    return safe_torch_load(io.BytesIO(data), map_location=map_location, source=filename)


@CheckpointLoader.register_scheme(prefixes='pavi://', force=True)
def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    raise CheckpointReadError(f'cannot load checkpoint {filename!r}: pavi:// is not supported '
                              f"(mmengine's pavi loader unpickles fully); download the file "
                              f'and give its local path')


SAFE_LOADERS = (load_from_local, load_from_http, load_from_openmmlab, load_from_ceph,
                load_from_pavi, mmengine_checkpoint.load_from_torchvision,  # these two read
                mmengine_checkpoint.load_from_mmcls)  # through load_from_http (patched)


_upstream_loader_for = CheckpointLoader._get_checkpoint_loader.__func__


def _safe_loader_for(cls, path: str):
    """The loader mmengine chooses for ``path`` when it is one of ``SAFE_LOADERS``;
    else (a scheme registered by another package) one that refuses, naming it."""
    loader = _upstream_loader_for(cls, path)
    if loader in SAFE_LOADERS:
        return loader

    def load_from_unknown_scheme(filename: str, map_location: Any = None) -> Any:
        raise CheckpointReadError(
            f'cannot load checkpoint {filename!r}: its scheme is read by '
            f'{loader.__module__}.{loader.__name__}, which gattn-mm does not know to load '
            f'safely (weights_only); download the file and give its local path')
    return load_from_unknown_scheme


CheckpointLoader._get_checkpoint_loader = classmethod(_safe_loader_for)


def _slurm_env() -> None:
    """Fill torch's env:// variables from SLURM's (as mmengine's slurm init does)."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
        os.environ['MASTER_ADDR'] = addr
    os.environ.setdefault('MASTER_PORT', '29500')


def _mpi_env() -> None:
    os.environ.setdefault('RANK', os.environ['OMPI_COMM_WORLD_RANK'])
    os.environ.setdefault('WORLD_SIZE', os.environ['OMPI_COMM_WORLD_SIZE'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Start gloo distributed training when there is no GPU.

    Args:
        cfg (Config): the training config; its ``env_cfg.dist_cfg.backend`` and
            ``model_wrapper_cfg`` are set for CPU DDP.
        launcher (str): ``pytorch``, ``slurm`` or ``mpi``.

    Returns:
        bool: True when the gloo group was started here, False with CUDA (then the
        Runner initialises nccl as usual) or when a group already exists.
    """
    if launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return False
    if launcher == 'slurm':
        _slurm_env()
    elif launcher == 'mpi':
        _mpi_env()
    elif launcher != 'pytorch':
        raise ValueError(f'unknown launcher {launcher!r}; expected none, pytorch, slurm '
                         f'or mpi')
    dist.init_process_group(backend='gloo', init_method='env://')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True
