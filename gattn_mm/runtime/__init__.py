"""gattn-mm's checkpoint safety: an explicit runtime, switched on by name.

``import gattn_mm`` (and this package) replaces nothing of mmengine; it registers
parts under new names only:

* ``GattnCheckpointHook`` (mmpretrain's ``HOOKS``, :mod:`.checkpoint_hook`): atomic
  checkpoint writes, old checkpoints deleted only after the new one is saved;
* the file backend ``'atomic_local'`` (:mod:`.atomic_backend`);
* the checkpoint scheme ``gattn-safe:`` (:mod:`.loaders`): ``gattn-safe:PATH_OR_URL``
  is read without unpickling code and, for a URL, hash-checked and offline first,
  wherever mmengine takes a checkpoint. gattn-mm's published models name their
  weights this way, so ``mmpretrain.get_model(NAME, pretrained=True)`` is safe with
  or without the runtime.

:func:`safe_checkpoints` is the runtime: the tools (train, test, infer,
visualize_attention, export_onnx, through ``gattn_mm.apis.cli.checkpoint_errors_exit``)
and ``GattnInferencer`` run inside it. While it is active

* every checkpoint scheme of mmengine's ``CheckpointLoader`` is read by its safe
  loader (:func:`.loaders.safe_loaders`): ``load_from``, ``--resume``, ``init_cfg``
  ``Pretrained``, ``load_checkpoint``;
* a checkpoint loaded into a whole model must hold exactly its weights, any model
  class (:func:`.exact_loading.exact_checkpoints`);
* ``init_cfg`` ``Pretrained`` logs its counts and refuses a checkpoint of another
  architecture (:func:`.pretrained.checked_pretrained`).

These three are switched for the duration only (mmengine offers no registry for
them: its Runner and ``PretrainedInit`` call ``CheckpointLoader``'s table and
``mmengine.runner.checkpoint.load_state_dict`` directly, and the name ``'Pretrained'``
is special to mmengine and mmpretrain), and restored on exit.

**Caveat.** Outside the runtime, a checkpoint given to mmengine's or mmpretrain's own
API by a plain ``http(s)://`` URL (``get_model(CONFIG, pretrained=URL)``,
``load_checkpoint``, an ``init_cfg`` ``Pretrained`` URL without ``gattn-safe:``) is
read by mmengine's loader, which unpickles it fully: enter :func:`safe_checkpoints`
or prefix it with ``gattn-safe:``. Local files are read by ``torch.load``, whose
default on torch >= 2.6 (which gattn-mm requires) is ``weights_only=True``.
"""
from contextlib import contextmanager
from typing import Iterator

from .atomic_backend import ATOMIC_LOCAL, AtomicLocalBackend
from .checkpoint_hook import GattnCheckpointHook
from .downloads import CheckpointDownloadError, download_checked
from .exact_loading import exact_checkpoints
from .loaders import GATTN_SCHEME, load_checkpoint_safely, safe_loaders
from .pretrained import PretrainedMismatchError, checked_pretrained
from .safe_load import CheckpointReadError, UnsafeCheckpointError, safe_torch_load


@contextmanager
def safe_checkpoints() -> Iterator[None]:
    """The runtime: safe loaders for every scheme, checked ``init_cfg`` ``Pretrained``
    and exact loading into whole models, for the duration (see this package's
    docstring); everything is restored on exit. Nested use is fine.

    Example:
        >>> from gattn_mm.runtime import safe_checkpoints
        >>> with safe_checkpoints():
        ...     runner.train()  # load_from, resume and init_cfg read safely
    """
    with safe_loaders(), checked_pretrained(), exact_checkpoints():
        yield


__all__ = ['ATOMIC_LOCAL', 'AtomicLocalBackend', 'CheckpointDownloadError',
           'CheckpointReadError', 'GATTN_SCHEME', 'GattnCheckpointHook',
           'PretrainedMismatchError', 'UnsafeCheckpointError', 'checked_pretrained',
           'download_checked', 'exact_checkpoints', 'load_checkpoint_safely',
           'safe_checkpoints', 'safe_loaders', 'safe_torch_load']
