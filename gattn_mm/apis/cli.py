"""Checks of command-line arguments shared by the tools: a checkpoint is never
empty or missing (the tools never run a model of random weights), outputs never
overwrite inputs, a checkpoint loaded into a whole model must hold exactly its weights
(any model class), and a refused checkpoint ends the tool with one line naming it."""
import argparse
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Sequence

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
