"""``GattnCheckpointHook``: mmengine's ``CheckpointHook`` that writes checkpoints
atomically and deletes old ones only after the new one is saved.

mmengine's ``CheckpointHook`` removes the oldest checkpoint beyond ``max_keep_ckpts``
*before* it writes the new one: with a full disk the new write fails after the last
good checkpoint is gone (``max_keep_ckpts=1``: none is left, and ``last_checkpoint``
names a file that does not exist), and ``save_best`` removes the previous best before
writing the new one. This hook saves first, then deletes; and for a local ``out_dir``
it writes through :class:`~gattn_mm.runtime.atomic_backend.AtomicLocalBackend` (no
half-written file), unless the config gives ``backend_args`` / ``file_client_args``.

Registered under its own name in mmpretrain's ``HOOKS``; mmengine's ``CheckpointHook``
is left as it is. ``configs/_base_/default_runtime.py`` selects it:
``default_hooks = dict(checkpoint=dict(type='GattnCheckpointHook', ...))``.
"""
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook

from mmpretrain.registry import HOOKS
from .atomic_backend import ATOMIC_LOCAL


@HOOKS.register_module()
class GattnCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook``, atomic on local disks, deleting old checkpoints
    after saving the new one (this module's docstring); same arguments."""

    def before_train(self, runner) -> None:
        out_dir = self.out_dir if self.out_dir is not None else runner.work_dir
        if self.backend_args is None and self.file_client_args is None and \
                type(get_file_backend(out_dir)) is LocalBackend:
            self.backend_args = dict(backend=ATOMIC_LOCAL)  # also runner.save_checkpoint's
        super().before_train(runner)

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
