"""Publish a checkpoint for release, as OpenMMLab does: keep the weights and the
meta, drop the optimizer, schedulers and message hub, and name the file
``OUT_YYYYMMDD-<first 8 hex of its sha256>.pth``. The result loads with
``torch.load(weights_only=True)``; the write is atomic (no half-written file)."""
import argparse
import datetime
import hashlib
import os
import os.path as osp
import tempfile

import torch

import gattn_mm  # noqa: F401
from gattn_mm.compat import safe_torch_load

DROP = ('optimizer', 'param_schedulers', 'message_hub')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('in_file', help='input checkpoint (e.g. work_dirs/x/epoch_12.pth)')
    parser.add_argument('out_file', help='output name; the date and hash are appended')
    return parser.parse_args(argv)


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


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
    out_dir = osp.dirname(osp.abspath(stem))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.pth', dir=out_dir)
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        safe_torch_load(tmp)  # what we publish must load safely
        final = f'{stem}_{datetime.date.today():%Y%m%d}-{sha256_of(tmp)[:8]}.pth'
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, final)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return final


def main(argv=None):
    args = parse_args(argv)
    final = publish(args.in_file, args.out_file)
    print(f'published {final}')


if __name__ == '__main__':
    main()
