"""Files that are never half-written: ``AtomicLocalBackend``, a local file backend
registered under the new name ``'atomic_local'``.

mmengine's local file backend writes a file in place (``open(path, 'wb')``): a kill, a
full disk or a quota mid-write leaves a truncated checkpoint that fails to load later,
after the previous one may already be gone. Here every ``put`` writes a temporary file
beside the target and renames it over the target only when the write has succeeded.

mmengine's ``'local'`` backend is left as it is. Checkpoints go through this one when
``backend_args=dict(backend='atomic_local')`` is passed (``GattnCheckpointHook`` does
so for a local ``out_dir``; ``mmengine.runner.save_checkpoint(..., backend_args=...)``
too); the tools write their own outputs (drawings, JSON, ONNX, downloads) with
``AtomicLocalBackend().put``.
"""
import os
import os.path as osp
import uuid
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio.backends import backends

ATOMIC_LOCAL = 'atomic_local'  # the backend's name: backend_args=dict(backend=...)


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


if ATOMIC_LOCAL not in backends:  # a new name, no prefix: 'local' stays mmengine's
    register_backend(ATOMIC_LOCAL, AtomicLocalBackend)
