"""Checkpoint loaders that never unpickle code, for every scheme mmengine reads, and
the two ways in: the ``gattn-safe:`` scheme and the :func:`safe_loaders` context.

mmengine picks a loader by the path's prefix (``CheckpointLoader``). On torch >= 2.6
its local-file loader is safe (``torch.load`` defaults to ``weights_only=True``), but
its ``http(s)://`` loader (also behind ``torchvision://``, ``mmcls://`` and URLs of
``open-mmlab://``) goes through ``torch.hub.load_state_dict_from_url``, which passes
``weights_only=False`` and trusts whatever is in the download cache; ``pavi://`` and
any scheme another package registers are not known to be safe. The loaders here read
every file with :func:`~gattn_mm.runtime.safe_load.safe_torch_load`, URLs through
:func:`~gattn_mm.runtime.downloads.download_checked` (hash-checked, offline first),
refuse ``pavi://`` and refuse a scheme they do not know, naming its loader.

Nothing of mmengine is replaced when this module is imported. It registers one new
scheme, ``gattn-safe:``: ``gattn-safe:PATH_OR_URL`` is read by the safe loader of
``PATH_OR_URL``'s own scheme wherever mmengine takes a checkpoint (``load_from``,
``init_cfg=dict(type='Pretrained', checkpoint=...)``, ``load_checkpoint``,
mmpretrain's ``get_model``), with or without the runtime; gattn-mm's published models
name their weights this way (:mod:`gattn_mm.apis.model_index`). Inside
:func:`safe_loaders` (which :func:`gattn_mm.runtime.safe_checkpoints` enters for the
tools and ``GattnInferencer``), every scheme of ``CheckpointLoader`` is read by its
safe loader; its table is restored on exit.
"""
import io
import os.path as osp
import re
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .downloads import download_checked
from .safe_load import CheckpointReadError, safe_torch_load

GATTN_SCHEME = 'gattn-safe:'  # a regular expression to mmengine: no special characters


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file checkpoint loader, with the safe unpickler."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def load_from_http(filename: str, map_location: Any = None, model_dir: str = None,
                   progress: bool = False) -> Any:
    """mmengine's URL checkpoint loader, safe and hash-checked; in a distributed run
    rank 0 downloads first (as mmengine's loader does)."""
    rank, world_size = get_dist_info()
    path = download_checked(filename, model_dir, progress) if rank == 0 else None
    if world_size > 1:
        dist.barrier()
        if rank > 0:
            path = download_checked(filename, model_dir, progress)
    return safe_torch_load(path, map_location=map_location, source=filename)


def _named_url(filename: str, urls: dict, listing: str) -> str:
    name = filename.split('://', 1)[1]
    if name not in urls:
        raise CheckpointReadError(f'cannot load checkpoint {filename!r}: {name!r} is not '
                                  f'a model name of {listing}')
    return urls[name]


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """mmengine's ``open-mmlab://NAME`` loader: NAME resolved as upstream, to a URL
    (:func:`load_from_http`) or a file of mmengine's home (:func:`load_from_local`)."""
    scheme, name = filename.split('://', 1)
    name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    url = _named_url(f'{scheme}://{name}', mmengine_checkpoint.get_external_models(),
                     "mmengine's open-mmlab list")
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return load_from_local(osp.join(mmengine_checkpoint._get_mmengine_home(), url),
                           map_location)


def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
    """mmengine's ``torchvision://NAME`` (``modelzoo://NAME``) loader, through
    :func:`load_from_http`."""
    url = _named_url(filename, mmengine_checkpoint.get_torchvision_models(),
                     "torchvision's models")
    return load_from_http(url, map_location=map_location)


def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
    """mmengine's ``mmcls://NAME`` loader, through :func:`load_from_http`."""
    url = _named_url(filename, mmengine_checkpoint.get_mmcls_models(), "mmcls's models")
    return mmengine_checkpoint._process_mmcls_checkpoint(
        load_from_http(url, map_location=map_location))


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """mmengine's ``s3://`` / ``petrel://`` loader, with the safe unpickler."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    return safe_torch_load(io.BytesIO(data), map_location=map_location, source=filename)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    raise CheckpointReadError(f'cannot load checkpoint {filename!r}: pavi:// is not supported '
                              f"(mmengine's pavi loader unpickles fully); download the file "
                              f'and give its local path')


def load_from_gattn_safe(filename: str, map_location: Any = None) -> Any:
    """The ``gattn-safe:PATH_OR_URL`` scheme: ``PATH_OR_URL`` read by the safe loader of
    its own scheme (:func:`load_checkpoint_safely`)."""
    return load_checkpoint_safely(filename[len(GATTN_SCHEME):], map_location)


SAFE_LOADERS = (load_from_local, load_from_http, load_from_openmmlab, load_from_torchvision,
                load_from_mmcls, load_from_ceph, load_from_pavi, load_from_gattn_safe)
SAFE_FOR = {  # mmengine's loader -> the one that reads its schemes here
    mmengine_checkpoint.load_from_local: load_from_local,
    mmengine_checkpoint.load_from_http: load_from_http,
    mmengine_checkpoint.load_from_openmmlab: load_from_openmmlab,
    mmengine_checkpoint.load_from_torchvision: load_from_torchvision,
    mmengine_checkpoint.load_from_mmcls: load_from_mmcls,
    mmengine_checkpoint.load_from_ceph: load_from_ceph,
    mmengine_checkpoint.load_from_pavi: load_from_pavi,
}


def _refusing(loader: Callable) -> Callable:
    def load_from_unknown_scheme(filename: str, map_location: Any = None) -> Any:
        raise CheckpointReadError(
            f'cannot load checkpoint {filename!r}: its scheme is read by '
            f'{loader.__module__}.{loader.__name__}, which gattn-mm does not know to load '
            f'safely (weights_only); download the file and give its local path')
    return load_from_unknown_scheme


def safe_scheme_table(schemes: dict = None) -> 'OrderedDict[str, Callable]':
    """``CheckpointLoader``'s table (``schemes``, else the current one), every loader
    replaced by its safe one (:data:`SAFE_FOR`), one of another package by one that
    refuses naming it; same prefixes, same order."""
    schemes = CheckpointLoader._schemes if schemes is None else schemes
    return OrderedDict((prefix, loader if loader in SAFE_LOADERS else
                        SAFE_FOR.get(loader) or _refusing(loader))
                       for prefix, loader in schemes.items())


def load_checkpoint_safely(filename: str, map_location: Any = None) -> Any:
    """``filename`` (a path, URL or any scheme mmengine knows) read by its safe loader,
    chosen as mmengine chooses (the first prefix of the table that matches)."""
    for prefix, loader in safe_scheme_table().items():
        if re.match(prefix, filename) is not None:
            return loader(filename, map_location)
    return load_from_local(filename, map_location)


@contextmanager
def safe_loaders() -> Iterator[None]:
    """While active, ``CheckpointLoader`` (hence mmengine's ``load_checkpoint``,
    ``Runner``'s ``load_from`` and resume, ``init_cfg`` ``Pretrained``) reads every
    scheme with its safe loader (:func:`safe_scheme_table`). On exit its table is
    restored, keeping any scheme registered meanwhile. Nested use is fine."""
    upstream = CheckpointLoader._schemes
    safe = safe_scheme_table(upstream)
    CheckpointLoader._schemes = OrderedDict(safe)  # registering edits it in place
    try:
        yield
    finally:
        added = {p: loader for p, loader in CheckpointLoader._schemes.items()
                 if safe.get(p) is not loader}
        CheckpointLoader._schemes = upstream
        for prefix, loader in added.items():
            CheckpointLoader.register_scheme(prefix, loader, force=True)


if GATTN_SCHEME not in CheckpointLoader._schemes:  # a new name; upstream ones untouched
    CheckpointLoader.register_scheme(GATTN_SCHEME, load_from_gattn_safe)
