"""Adaptations of mmengine's checkpoint saving, each with its reason (the loading side
is in :mod:`gattn_mm.compat`). Importing this module installs both.

1. **Checkpoints are never half-written.** mmengine's local file backend writes a
   checkpoint in place (``open(path, 'wb')``), after its ``CheckpointHook`` has
   already deleted the oldest one (and, for ``save_best``, the previous best): a
   kill, a full disk or a quota mid-write leaves a truncated ``.pth`` that fails to
   load later. :class:`AtomicLocalBackend` replaces it for local paths: every
   ``put`` writes a temporary file beside the target and renames it over the
   target only when the write has succeeded.
2. **Old checkpoints are deleted only after the new one is saved.** mmengine's
   ``CheckpointHook`` removes the oldest checkpoint beyond ``max_keep_ckpts`` *before*
   it writes the new one: with a full disk the new write fails after the last good
   checkpoint is gone (``max_keep_ckpts=1``: none is left, and ``last_checkpoint``
   names a file that does not exist), and ``save_best`` removes the previous best
   before writing the new one. :class:`CheckpointHook` (registered under the same
   name in mmpretrain's scope, which gattn configs use) saves first, then deletes.
"""
import os
import os.path as osp
import uuid
from pathlib import Path
from typing import Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmpretrain.registry import HOOKS


@HOOKS.register_module(name='CheckpointHook', force=True)
class CheckpointHook(MMEngineCheckpointHook):
    """mmengine's ``CheckpointHook`` that deletes old checkpoints after saving (item 2)."""

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
