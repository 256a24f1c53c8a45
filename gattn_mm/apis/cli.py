"""Checks of command-line arguments shared by the tools: a checkpoint is never
empty or missing (the tools never run a model of random weights), outputs never
overwrite inputs, a checkpoint loaded into a whole model must hold exactly its weights
(any model class), and a refused checkpoint ends the tool with one line naming it.
:func:`run_tool` runs every tool's command line: a refusal the user caused (a bad
config, annotation, image, checkpoint, a full disk) is one line and exit code 1, its
traceback shown with ``--debug`` or ``GATTN_DEBUG=1``."""
import argparse
import errno
import os
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from gattn_mm.models import CheckpointMismatchError
from gattn_mm.runtime import (CheckpointReadError, UnsafeCheckpointError, safe_checkpoints,
                              safe_torch_load)
from gattn_mm.utils.instance_budget import InstanceBudgetError, check_instance_budget

CHECKPOINT_ERRORS = (CheckpointMismatchError, CheckpointReadError, UnsafeCheckpointError)
URL_PREFIXES = ('http://', 'https://')


def checkpoint_arg(value: str) -> str:
    """argparse ``type`` of a CHECKPOINT argument: an existing file or an http(s) URL.

    Raises:
        argparse.ArgumentTypeError: for an empty value, a folder or a missing file.
    """
    if not value.strip():
        raise argparse.ArgumentTypeError(
            'empty; give the checkpoint file of the config (gattn-mm tools do not run '
            'a model of random weights)')
    if value.startswith(URL_PREFIXES):
        return value
    if osp.isdir(value):
        raise argparse.ArgumentTypeError(f'{value} is a folder, not a checkpoint file')
    if not osp.isfile(value):
        raise argparse.ArgumentTypeError(f'{value}: no such checkpoint file')
    return value


def refuse_overwriting_inputs(outputs: Sequence[str], inputs: Sequence[str],
                              option: str) -> None:
    """Raise ``SystemExit`` naming ``option`` when one of ``outputs`` is one of ``inputs``
    (the same file, also through links or another spelling of its path)."""
    given = {osp.realpath(p) for p in inputs}
    clash = [p for p in outputs if osp.realpath(p) in given]
    if clash:
        raise SystemExit(f'error: {option} would overwrite the input {clash[0]}; '
                         f'write the results elsewhere')


@contextmanager
def checkpoint_errors_exit(checkpoint: str) -> Iterator[None]:
    """Where a tool loads ``checkpoint``: gattn-mm's runtime is active
    (:func:`gattn_mm.runtime.safe_checkpoints`: every checkpoint scheme read without
    unpickling code, ``init_cfg`` ``Pretrained`` checked, loading exact for every
    model: missing, unexpected or reshaped keys are refused, e.g. a gattn checkpoint
    given to a plain ``ImageClassifier`` baseline), and a refused checkpoint (unsafe,
    unreadable, or not this model's weights) becomes ``SystemExit`` with one line
    naming it instead of a traceback; an ``init_cfg`` ``Pretrained`` refusal names its
    own file."""
    try:
        with safe_checkpoints():
            yield
    except CHECKPOINT_ERRORS as err:
        named = hasattr(err, 'checkpoint') or not checkpoint  # the message names it
        raise SystemExit(f'error: {err}' if named else
                         f'error: checkpoint {checkpoint}: {err}') from None


def check_class_count(model, dataset, config: str) -> None:
    """Raise ``SystemExit`` when ``dataset``'s ``classes`` (metainfo) and ``model``'s
    ``num_classes`` (its data preprocessor's, the heads' by default) disagree: a
    model of 2 outputs trained on 3 class names would label its predictions wrongly."""
    model = getattr(model, 'module', model)  # DDP-wrapped in a distributed run
    classes = dataset.metainfo.get('classes')
    num_classes = getattr(getattr(model, 'data_preprocessor', None), 'num_classes', None)
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise SystemExit(
            f'error: the data set ({type(dataset).__name__}, {getattr(dataset, "ann_file", "")}) '
            f'has {len(classes)} classes {list(classes)[:10]} but the model of {config} '
            f'has num_classes={num_classes}: set the heads\' num_classes (e.g. '
            f'--cfg-options model.head.num_classes={len(classes)} ...) or fix the data')


def check_model_budget(model) -> None:
    """Raise ``SystemExit`` naming the config key when the instances of one image would
    take more memory than the image budget (:func:`~gattn_mm.utils.instance_budget.
    check_instance_budget`), before the run reads any data."""
    try:
        check_instance_budget(model)
    except InstanceBudgetError as err:
        raise SystemExit(f'error: {err}') from None


# what torch.save(..., _use_new_zipfile_serialization=False) writes first: pickle
# protocol 2, then torch's legacy magic number as a 10-byte long
LEGACY_TORCH_PREFIX = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'


def is_legacy_torch(path: str) -> bool:
    """Whether ``path`` starts as a legacy (pre-1.6, non-zip) ``torch.save`` file."""
    with open(path, 'rb') as f:
        return f.read(len(LEGACY_TORCH_PREFIX)) == LEGACY_TORCH_PREFIX


def check_resumable(path: str) -> None:
    """Raise ``SystemExit`` unless the local file ``path`` holds a training state to
    ``--resume`` from (mmengine would fail with ``KeyError: 'message_hub'``); a URL is
    left to the loader."""
    if path.startswith(URL_PREFIXES):
        return
    try:
        checkpoint_arg(path)
    except argparse.ArgumentTypeError as err:
        raise SystemExit(f'error: --resume: {err}') from None
    with checkpoint_errors_exit(path):  # mmap (no copy in memory) needs the zip format;
        # a legacy (non-zip) torch.save file, which load_from and test.py read, is read whole
        checkpoint = safe_torch_load(path, map_location='cpu', mmap=not is_legacy_torch(path))
    keys = checkpoint.keys() if isinstance(checkpoint, dict) else ()
    missing = [k for k in ('meta', 'message_hub', 'optimizer') if k not in keys]
    if missing:
        raise SystemExit(f'error: --resume {path}: it holds no training state ('
                         f'{", ".join(missing)} missing; published checkpoints hold '
                         f'weights only); to start from its weights use --cfg-options '
                         f'load_from={path}')


DEBUG_ENV = 'GATTN_DEBUG'
# OS errors of the user's files and machine (not of gattn-mm's code)
USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
               errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EIO,
               errno.EFBIG, errno.ENAMETOOLONG, errno.ELOOP}


def refusal_types() -> tuple:
    """The exceptions a tool raises when the user's input is refused: gattn-mm's own
    (images, slides, annotations, data roots, checkpoints, budgets, a busy work dir)
    and those of a config, argument or file mmengine and Python raise for them (a
    config's syntax, a missing key or unknown type, a wrong value, a file missing,
    unwritable or a disk full, memory exhausted). Anything else (AttributeError,
    IndexError, ...) is a bug of gattn-mm and keeps its traceback."""
    import torch

    from gattn_mm.apis.outputs import WorkDirBusyError
    from gattn_mm.datasets.transforms.image_reading import ImageReadError
    return (ImageReadError, WorkDirBusyError, InstanceBudgetError, *CHECKPOINT_ERRORS,
            ValueError, KeyError, TypeError, SyntaxError, OSError, MemoryError,
            torch.OutOfMemoryError)


def is_refusal(err: BaseException) -> bool:
    """Whether ``err`` is a refusal of the user's input (see :func:`refusal_types`);
    an ``OSError`` only of the kinds in ``USER_ERRNOS`` or of gattn-mm's own types."""
    if not isinstance(err, refusal_types()):
        return False
    if isinstance(err, OSError) and type(err).__module__ == 'builtins' and \
            err.errno is not None:
        return err.errno in USER_ERRNOS
    return True


def refusal_message(err: BaseException) -> str:
    """One line (or a few, when the message has several) for ``err``: gattn-mm's own
    errors by their message, others with their type; an error raised in a data loader
    worker by the original's last line (torch puts the worker's traceback in it)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if 'Original Traceback' in text:  # torch's ExceptionWrapper.reraise
        text = text.strip().splitlines()[-1]
        text = text.split(': ', 1)[1] if ': ' in text else text
    own = type(err).__module__.startswith('gattn_mm') or isinstance(err, OSError) and \
        type(err).__module__ != 'builtins'
    return f'error: {text}' if own else f'error: {type(err).__name__}: {text}'


def run_tool(main: Callable, argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``main(argv)`` as its command line and return its exit code (its
    own int, else 0). A refusal of the user's input (:func:`is_refusal`) prints one
    ``error: ...`` line on stderr and returns 1, instead of a traceback; with
    ``--debug`` among the arguments (taken out before ``main`` sees them) or
    ``GATTN_DEBUG=1`` in the environment, it is raised with its traceback. Other
    exceptions (bugs) keep their traceback; ``SystemExit`` passes as it is.

    Example (a tool's last lines)::

        if __name__ == '__main__':
            sys.exit(run_tool(main))
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')
    argv = [a for a in argv if a != '--debug']
    try:
        code = main(argv)
    except Exception as err:  # noqa: BLE001  (sorted by is_refusal; bugs re-raised)
        if debug or not is_refusal(err):
            raise
        print(refusal_message(err), file=sys.stderr)
        print(f'(run again with --debug or {DEBUG_ENV}=1 to see the traceback)',
              file=sys.stderr)
        return 1
    return code if isinstance(code, int) and not isinstance(code, bool) else 0
