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
import re
import sys
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence

from gattn_mm.datasets.microscopy_generator import ABSENT
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


def label_set_options(model, classes: Sequence[str]) -> List[str]:
    """The ``--cfg-options`` that fit ``model`` (built, or its config) to the label
    set ``classes``: the ``num_classes`` of each head and of the data preprocessor
    that has another (all of them, or the build refuses the mix), and for a presence
    task (a class named ``absent``) the instance head's ``negative_class``, without
    which its MIL loss of the absent images is off. Empty when the model fits."""
    model = getattr(model, 'module', model)  # DDP-wrapped in a distributed run
    opts = [f'model.{key}.num_classes={len(classes)}'
            for key in ('head', 'instance_head', 'data_preprocessor')
            if getattr(getattr(model, key, None), 'num_classes', None)
            not in (None, len(classes))]
    instance_head = getattr(model, 'instance_head', None)
    if ABSENT in classes and hasattr(instance_head, 'negative_class'):
        negative = list(classes).index(ABSENT)
        if instance_head.negative_class != negative:
            opts.append(f'model.instance_head.negative_class={negative}')
    return opts


def check_class_count(model, dataset, config: str) -> None:
    """Raise ``SystemExit`` when ``dataset``'s ``classes`` (metainfo) do not fit
    ``model`` (:func:`label_set_options`), naming every option to set at once: a
    model of 2 outputs trained on 3 class names would label its predictions wrongly,
    and a presence task whose "absent" class the instance head does not know trains
    without its MIL loss."""
    classes = dataset.metainfo.get('classes')
    opts = label_set_options(model, classes) if classes is not None else []
    if opts:
        raise SystemExit(
            f'error: the data set ({type(dataset).__name__}, '
            f'{getattr(dataset, "ann_file", "") or getattr(dataset, "data_root", "")}) '
            f'has {len(classes)} classes {list(classes)[:10]}, which the model of {config} '
            f'does not fit: add --cfg-options {" ".join(opts)} (or fix the data)')


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


# Python warnings of upstream packages that tell a tool's user nothing to act on; the
# tools filter them (tools/*.py: those raised at import, before gattn_mm is imported;
# run_tool: the rest). Nothing is filtered on `import gattn_mm`.
UPSTREAM_WARNINGS = (
    # mmcv-lite (gattn-mm's `lite` extra) has no compiled ops; gattn-mm needs none
    'Fail to import ``MultiScaleDeformableAttention``',
    # mmengine looks a config's `mmpretrain::` base up with pkg_resources
    'pkg_resources is deprecated as an API',
)


def quiet_upstream_warnings() -> None:
    """Ignore the warnings of :data:`UPSTREAM_WARNINGS` in this process (a tool's)."""
    for message in UPSTREAM_WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message))


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
    quiet_upstream_warnings()
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


# --- one command-line grammar for the tools that run a model on images --------------
MODEL_USAGE = '(CONFIG CHECKPOINT | MODEL_NAME)'
CHECKPOINT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.bin', '.safetensors')


def published_models() -> list:
    """The names of gattn-mm's published models (``list_models('gattn*')``)."""
    from mmpretrain.apis import list_models
    return list_models('gattn*')


def add_model_arguments(parser: argparse.ArgumentParser, images: bool) -> None:
    """The positional arguments every tool that runs a model takes, one grammar:
    ``CONFIG CHECKPOINT`` or ``MODEL_NAME`` (a published model: its config and
    weights, offline), then ``IMAGES...`` when ``images``. Resolve them with
    :func:`resolve_model_arguments` after parsing."""
    parser.add_argument('config', metavar='CONFIG|MODEL_NAME',
                        help='model config, or a published model\'s name (e.g. '
                        'gattn_r18_digitbags: its config and weights, offline; then no '
                        'CHECKPOINT)')
    parser.add_argument('checkpoint', nargs='?', metavar='CHECKPOINT',
                        help='checkpoint file or http(s) URL of CONFIG (not with a '
                        'model name)')
    if images:
        parser.add_argument('images', nargs='*', metavar='IMAGES',
                            help='image or slide files and/or folders of them')


def resolve_model_arguments(parser: argparse.ArgumentParser, args, images: bool) -> None:
    """Sort the parsed positionals of :func:`add_model_arguments` out, or
    ``parser.error`` naming the argument: sets ``args.model_name`` (None for a
    config); with a model name the word parsed as CHECKPOINT is the first image and
    ``args.checkpoint`` is None. A config must exist and have its CHECKPOINT; a word
    that is neither a file nor a published name is refused with the names."""
    args.model_name = None
    if not osp.isfile(args.config):
        names = published_models()
        if args.config not in names:
            if args.config.endswith('.py') or os.sep in args.config:
                parser.error(f'argument config: {args.config}: no such config file')
            parser.error(f'argument config: {args.config!r} is neither a config '
                         f'file nor a published model (one of: {", ".join(names)})')
        args.model_name = args.config
        extra = args.checkpoint
        if images and extra is not None:
            args.images = [extra] + args.images
            first = args.images[0]
            extra = first if first.lower().endswith(CHECKPOINT_SUFFIXES) or \
                first.startswith(URL_PREFIXES) else None
        if extra is not None:
            parser.error(f'argument checkpoint: {args.model_name} is a published model and '
                         f'brings its own weights, {extra} is not taken; for other '
                         f'weights give CONFIG CHECKPOINT (its config: python '
                         f'tools/download.py {args.model_name} --dest DIR)')
        args.checkpoint = None
    else:
        if args.checkpoint is None:
            parser.error(f'argument checkpoint: the config {args.config} needs its '
                         f'checkpoint (gattn-mm tools do not run a model of random weights)')
        try:
            checkpoint_arg(args.checkpoint)
        except argparse.ArgumentTypeError as err:
            parser.error(f'argument checkpoint: {err}')
    if images and not args.images:
        parser.error('no IMAGES given')


def model_config(args):
    """``(Config, checkpoint)`` of resolved arguments (:func:`resolve_model_arguments`):
    a published model's config and its weights (``gattn-safe:URL``: hash-checked, read
    offline from the package when there), or the config file and CHECKPOINT."""
    from mmengine.config import Config
    if args.model_name is None:
        return Config.fromfile(args.config), args.checkpoint
    from mmpretrain.apis import ModelHub
    meta = ModelHub.get(args.model_name)
    return meta.config, meta.weights


def canvas_slide_refusal(path: str, max_pixels: int, model: str) -> Optional[str]:
    """Why a model that reads images whole (a canvas config) cannot read ``path``, when
    ``path`` is a whole-slide image (an OpenSlide format, a pyramidal TIFF or one over
    ``max_pixels``) that a native-resolution config reads, else None: run such a
    config, which reads slides lazily from their pyramid, rather than raise
    ``--max-pixels`` into a whole decode. A file whose smallest level is over
    ``max_pixels`` (a TIFF without a pyramid, e.g. a decompression bomb's header) has no
    level for a native config to glance at either: None, the reader's refusal stands."""
    from gattn_mm.datasets.transforms.loading import LoadMicroscopyImage
    if not LoadMicroscopyImage(max_pixels=max_pixels).is_slide(path):
        return None
    size = ''
    try:
        import warnings

        from gattn_mm.datasets.slides import open_slide
        with warnings.catch_warnings():  # a slide read by strips: slow, said elsewhere
            warnings.simplefilter('ignore')
            slide = open_slide(path, 1 << 62)
        (h, w), (lh, lw), _ = slide.shape, slide.level_shapes[-1], slide.close()
        size = f' of {w:,} x {h:,} px (a {h * w * 3 / 1e9:.1f} GB decode)'
    except Exception:  # noqa: BLE001  (the size is only a detail of the advice)
        lh = lw = 0
    if lh * lw > max_pixels:  # open_slide(path, max_pixels) refuses it: no level to glance at
        return None
    return (f'{path} is a whole-slide image{size} and {model} reads each image whole onto '
            f'its canvas: run a native-resolution config, which reads slides lazily from '
            f'their pyramid (e.g. configs/gattn_digitbags_native.py with the '
            f'gattn_r18_digitbags weights; docs/slides.md), rather than raise --max-pixels')
