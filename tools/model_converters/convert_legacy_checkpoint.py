"""Convert a legacy checkpoint into one that loads with ``torch.load(weights_only=True)``.

gattn-mm only ever loads checkpoints with PyTorch's safe unpickler. A checkpoint
written by an older toolkit (mmcv 1.x, mmengine without ``SafeCheckpointHook``, a
plain ``torch.save`` of a config object or a whole model) can hold Python objects
that unpickler refuses. This tool is the explicit opt-in for such a file:

    python tools/model_converters/convert_legacy_checkpoint.py IN OUT --trust-pickle

``--trust-pickle`` loads IN with full unpickling, which RUNS ANY CODE THE FILE
CARRIES: give it only files from a source you trust. Without the flag the tool
only tries the safe loader and says whether the file needs converting. OUT keeps
the tensors (``state_dict`` and, when present, ``ema_state_dict``) and the ``meta``
turned into plain Python types (objects it cannot express are dropped and listed);
it is written atomically and checked to load with ``weights_only=True``.
"""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os.path as osp
import sys
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import torch

from gattn_mm.runtime import UnsafeCheckpointError, safe_torch_load
from gattn_mm.utils.plain_state import save_safe_atomic, to_plain

TENSOR_DICTS = ('state_dict', 'ema_state_dict')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('in_file', help='the legacy checkpoint')
    parser.add_argument('out_file', help='where to write the safe checkpoint')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load IN with full unpickling (runs any code it carries; '
                             'only for files from a source you trust)')
    return parser.parse_args(argv)


def tensor_dict(value: Any, where: str) -> Dict[str, torch.Tensor]:
    """A flat {name: tensor} dict from a state dict or a module."""
    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if not isinstance(value, dict) or not all(
            isinstance(v, torch.Tensor) for v in value.values()):
        raise TypeError(f'{where}: expected a dict of tensors or an nn.Module, got '
                        f'{type(value).__name__}')
    return OrderedDict((str(k), v.detach().cpu()) for k, v in value.items())


def convert(checkpoint: Any, in_file: str) -> Tuple[Dict[str, Any], List[str]]:
    """The safe form of a loaded checkpoint and the meta paths that were dropped."""
    dropped: List[str] = []
    if isinstance(checkpoint, torch.nn.Module) or (
            isinstance(checkpoint, dict) and checkpoint
            and all(isinstance(v, torch.Tensor) for v in checkpoint.values())):
        return dict(state_dict=tensor_dict(checkpoint, in_file), meta={}), dropped
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise KeyError(f'{in_file}: expected a "state_dict" key, a state dict or an '
                       f'nn.Module, got {type(checkpoint).__name__} with keys '
                       f'{sorted(checkpoint) if isinstance(checkpoint, dict) else "-"}')
    out = {key: tensor_dict(checkpoint[key], f'{in_file}: "{key}"')
           for key in TENSOR_DICTS if key in checkpoint}
    meta = to_plain(checkpoint.get('meta') or {}, 'meta', dropped)
    out['meta'] = meta if isinstance(meta, dict) else {}
    dropped += [key for key in checkpoint if key not in TENSOR_DICTS + ('meta',)]
    return out, dropped


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.in_file):
        print(f'error: checkpoint {args.in_file!r} does not exist', file=sys.stderr)
        return 2
    try:
        checkpoint = safe_torch_load(args.in_file, map_location='cpu')
        print(f'{args.in_file} already loads with weights_only=True; converting anyway')
    except UnsafeCheckpointError as err:
        if not args.trust_pickle:
            print(f'error: {err}\nRe-run with --trust-pickle to load it with full '
                  f'unpickling, only if you trust where {args.in_file!r} comes from.',
                  file=sys.stderr)
            return 1
        print(f'warning: loading {args.in_file} with full unpickling (--trust-pickle)',
              file=sys.stderr)
        checkpoint = torch.load(args.in_file, map_location='cpu', weights_only=False)
    safe, dropped = convert(checkpoint, args.in_file)
    save_safe_atomic(safe, args.out_file)
    for item in dropped:
        print(f'dropped: {item}')
    print(f'wrote {args.out_file} ({len(safe["state_dict"])} tensors in state_dict)')
    return 0


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
