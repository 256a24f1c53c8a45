"""Upgrade a gattn-mm 0.1 checkpoint to the 0.2 model layout.

gattn-mm 0.2 split the model into parts (reader, fusion head, instance head); the
weights are the same, under new names:

    local_backbone.*  ->  reader.*
    head.fc_local.*   ->  instance_head.fc.*

The checkpoint's ``meta.cfg`` (a 0.1 config, which 0.2 does not build) is dropped;
use the 0.2 config of the model. The file is read with the safe unpickler only and
written atomically.

    python tools/model_converters/upgrade_gattn_checkpoint.py OLD.pth NEW.pth
"""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import sys
from collections import OrderedDict
from typing import Dict

import torch

from gattn_mm.runtime import safe_torch_load
from gattn_mm.utils.plain_state import save_safe_atomic

RENAMES = (('local_backbone.', 'reader.'), ('head.fc_local.', 'instance_head.fc.'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('in_file', help='a gattn-mm 0.1 checkpoint')
    parser.add_argument('out_file', help='where to write the 0.2 checkpoint')
    return parser.parse_args(argv)


def upgrade_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The state dict with every 0.1 name renamed (see the module doc)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        for old, new in RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint = safe_torch_load(args.in_file, map_location='cpu')
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('state_dict'), dict):
        print(f'error: {args.in_file}: expected a checkpoint with a "state_dict"',
              file=sys.stderr)
        return 2
    state = checkpoint['state_dict']
    if not any(k.startswith(old) for k in state for old, _ in RENAMES):
        print(f'error: {args.in_file}: no 0.1 key (local_backbone.*, head.fc_local.*): '
              f'nothing to upgrade', file=sys.stderr)
        return 1
    checkpoint['state_dict'] = upgrade_state_dict(state)
    if 'ema_state_dict' in checkpoint:
        checkpoint['ema_state_dict'] = upgrade_state_dict(checkpoint['ema_state_dict'])
    meta = checkpoint.setdefault('meta', {})
    meta.pop('cfg', None)
    meta['upgraded_from'] = 'gattn-mm 0.1'
    save_safe_atomic(checkpoint, args.out_file)
    print(f'wrote {args.out_file}')
    return 0


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
