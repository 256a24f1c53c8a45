"""Publish a checkpoint for release, as OpenMMLab does: keep the weights and the
meta, drop the optimizer, schedulers and message hub, and name the file
``OUT_YYYYMMDD-<first 8 hex of its sha256>.pth``. The result loads with
``torch.load(weights_only=True)``; the write is atomic (no half-written file)."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import datetime
import hashlib

import gattn_mm  # noqa: F401
from gattn_mm.runtime import AtomicLocalBackend, safe_torch_load
from gattn_mm.utils.plain_state import safe_bytes

DROP = ('optimizer', 'param_schedulers', 'message_hub')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('in_file', help='input checkpoint (e.g. work_dirs/x/epoch_12.pth)')
    parser.add_argument('out_file', help='output name; the date and hash are appended')
    return parser.parse_args(argv)


def publish(in_file: str, out_file: str) -> str:
    checkpoint = safe_torch_load(in_file, map_location='cpu')
    if 'state_dict' not in checkpoint:
        raise KeyError(f'{in_file}: no "state_dict" key; is this a training checkpoint?')
    for key in DROP:
        checkpoint.pop(key, None)
    meta = checkpoint.get('meta', {})
    for key in ('hook_msgs',):
        meta.pop(key, None)
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    data = safe_bytes(checkpoint)  # what we publish must load safely
    final = f'{stem}_{datetime.date.today():%Y%m%d}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    AtomicLocalBackend().put(data, final)  # no half-written file
    return final


def main(argv=None):
    args = parse_args(argv)
    final = publish(args.in_file, args.out_file)
    print(f'published {final}')


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
