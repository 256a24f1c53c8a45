"""Adaptations to upstream behaviour, in one place, each with its reason.

1. **Safe checkpoint loading.** mmengine 0.10.x calls ``torch.load`` without
   ``weights_only``; on torch < 2.6 that unpickles anything (a checkpoint can run
   code), on torch >= 2.6 it is the safe loader but fails with an opaque message.
   :func:`load_from_local` always uses ``weights_only=True`` and turns a refusal into
   an error that names the file. There is no fallback to full unpickling; the one
   explicit opt-in for a trusted legacy file is converting it once with
   ``tools/model_converters/convert_legacy_checkpoint.py IN OUT --trust-pickle``.
   Runner checkpoints stay loadable because ``SafeCheckpointHook`` stores the
   message hub in plain types (see ``gattn_mm/engine/hooks``).
2. **Distributed training without a GPU.** mmengine 0.10.7's ``init_dist`` calls
   ``torch.cuda.set_device`` unconditionally and the Runner wraps the model in DDP
   with ``device_ids=[LOCAL_RANK]``, both of which fail on a CPU-only machine.
   :func:`setup_cpu_distributed` starts a gloo process group before the Runner (so
   the Runner skips ``init_dist``) and asks for ``device_ids=None``. With CUDA
   nothing changes: mmengine initialises nccl itself.
3. **Checkpoints are never half-written.** mmengine's local file backend writes a
   checkpoint in place (``open(path, 'wb')``), after its ``CheckpointHook`` has
   already deleted the oldest one (and, for ``save_best``, the previous best): a
   kill, a full disk or a quota mid-write leaves a truncated ``.pth`` that fails to
   load later. :class:`AtomicLocalBackend` replaces it for local paths: every
   ``put`` writes a temporary file beside the target and renames it over the
   target only when the write has succeeded.
4. **Checkpoints by URL are loaded safely and checked.** mmengine's ``http(s)://``
   loader (also behind ``open-mmlab://``, ``mmcls://``, ``torchvision://``) goes
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
   network.
5. **Old checkpoints are deleted only after the new one is saved.** mmengine's
   ``CheckpointHook`` removes the oldest checkpoint beyond ``max_keep_ckpts`` *before*
   it writes the new one: with a full disk the new write fails after the last good
   checkpoint is gone (``max_keep_ckpts=1``: none is left, and ``last_checkpoint``
   names a file that does not exist), and ``save_best`` removes the previous best
   before writing the new one. :class:`CheckpointHook` (registered under the same
   name in mmpretrain's scope, which gattn configs use) saves first, then deletes.
"""
import hashlib
import os
import os.path as osp
import pickle
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlparse

import torch
import torch.distributed as dist
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io
from mmengine.dist import get_dist_info, is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmpretrain.registry import HOOKS
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects outside PyTorch's ``weights_only`` allowlist."""


class CheckpointReadError(IOError):
    """A checkpoint file is empty, truncated or not a PyTorch checkpoint."""


def safe_torch_load(filename: str, map_location: Any = None, source: str = None,
                    mmap: bool = False) -> Any:
    """``torch.load(filename, weights_only=True)`` with an error naming the file (or
    ``source``, e.g. the URL it was downloaded from)."""
    where = filename if source is None else f'{source} (cached as {filename})'
    try:
        return torch.load(filename, map_location=map_location, weights_only=True, mmap=mmap)
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
            f'convert_legacy_checkpoint.py {filename} OUT.pth --trust-pickle') from None
    except (EOFError, RuntimeError, KeyError, ValueError, OSError) as err:
        raise CheckpointReadError(
            f'cannot read checkpoint {where!r}: it is empty, truncated or not a PyTorch '
            f'checkpoint ({type(err).__name__}: {str(err)[:200]})') from None


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
        except (OSError, RuntimeError, ValueError) as err:  # URLError, HTTPError, hash
            raise CheckpointReadError(f'cannot download checkpoint {url}: '
                                      f'{type(err).__name__}: {err}') from None
    elif match and not sha256_prefix_ok(cached, match.group(1)):
        raise UnsafeCheckpointError(
            f'the cached checkpoint {cached!r} of {url} does not match the sha256 '
            f'prefix {match.group(1)!r} in its name; delete it to download it again')
    return cached


def load_from_http(filename: str, map_location: Any = None, model_dir: str = None,
                   progress: bool = False) -> Any:
    """mmengine's URL checkpoint loader, safe and hash-checked (item 4 above); in a
    distributed run rank 0 downloads first (as mmengine's loader does)."""
    rank, world_size = get_dist_info()
    path = download_checked(filename, model_dir, progress) if rank == 0 else None
    if world_size > 1:
        dist.barrier()
        if rank > 0:
            path = download_checked(filename, model_dir, progress)
    return safe_torch_load(path, map_location=map_location, source=filename)


CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)(load_from_http)
mmengine_checkpoint.load_from_http = load_from_http  # used by open-mmlab://, mmcls://, ...


@HOOKS.register_module(name='CheckpointHook', force=True)
class CheckpointHook(MMEngineCheckpointHook):
    """mmengine's ``CheckpointHook`` that deletes old checkpoints after saving (item 5)."""

    def _save_best_checkpoint(self, runner, metrics) -> None:
        backend, deferred = self.file_backend, []
        previous = (getattr(self, 'best_ckpt_path', None),
                    dict(getattr(self, 'best_ckpt_path_dict', {})))
        backend.remove = deferred.append  # upstream removes the old best first: defer
        try:
            super()._save_best_checkpoint(runner, metrics)
        except BaseException:
            self.best_ckpt_path, self.best_ckpt_path_dict = previous  # still the best file
            raise
        finally:
            del backend.remove  # the backend's own method again
        for path in deferred:  # reached only when every save succeeded
            if backend.isfile(path):
                backend.remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        keep, stale = self.max_keep_ckpts, None
        new = keep > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step)
        if new:  # the bookkeeping first, as upstream, so the checkpoint stores it
            if len(self.keep_ckpt_ids) == keep:
                stale = self.keep_ckpt_ids.popleft()
            self._keep(runner, lambda ids: ids.append(step))
        self.max_keep_ckpts = -1  # upstream: save only
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        except BaseException:
            if new:  # not saved: the kept list is what is on disk
                self._keep(runner, lambda ids: (ids.pop(), stale is not None and
                                                ids.appendleft(stale)))
            raise
        finally:
            self.max_keep_ckpts = keep
        if stale is not None and is_main_process():
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)

    def _keep(self, runner, change) -> None:
        change(self.keep_ckpt_ids)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose writes are atomic: the bytes go to a
    temporary file in the target's folder, which replaces the target only once
    they are all written. A failed write leaves the old file (if any) untouched
    and no temporary behind."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        filepath = str(filepath)
        folder = osp.dirname(osp.abspath(filepath))
        os.makedirs(folder, exist_ok=True)
        tmp = osp.join(folder, f'.{osp.basename(filepath)}.{uuid.uuid4().hex[:8]}.tmp')
        try:
            with open(tmp, 'xb') as f:  # mode 0o666 & ~umask, like open(path, 'wb')
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


def _use_atomic_local_backend() -> None:
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, backend in list(mmengine_io.backend_instances.items()):
        if type(backend) is LocalBackend:  # instances made before this import
            del mmengine_io.backend_instances[key]


_use_atomic_local_backend()


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
