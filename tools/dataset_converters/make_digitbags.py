"""Generate a digits benchmark from the UCI digits that scikit-learn ships (no
download). Same arguments and seed -> same bytes.

--preset digitbags (default): 512 px canvases with 3-8 digits of 24 px on a textured
background; label 1 iff the target digit is present.
--preset megapixel: Megapixel digits, the public Megapixel MNIST definition: 1500 px
black canvases, 5 digits of 28 px (3 of the majority class), 50 line scribbles;
--task majority (the majority class, default), max (the largest digit) or multi
(multi-label: the classes present); 5,000 / 1,000 / 1,000 images."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os.path as osp

from gattn_mm.datasets.digitbags_generator import DigitBagsSpec, generate
from gattn_mm.datasets.megapixel_generator import TASKS, MegapixelSpec, generate_megapixel

DEFAULTS = dict(
    digitbags=dict(canvas=512, digit_size=24, num=(2000, 400, 400)),
    megapixel=dict(canvas=1500, digit_size=28, num=(5000, 1000, 1000)))
MAX_CANVAS = 8192  # a canvas is held in memory as float32 several times over


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def canvas_side(text: str) -> int:
    """argparse type: an integer canvas side <= MAX_CANVAS (the spec checks the rest)."""
    value = int(text)
    if value > MAX_CANVAS:
        raise argparse.ArgumentTypeError(f'at most {MAX_CANVAS} px, got {value}')
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--preset', choices=list(DEFAULTS), default='digitbags',
                   help='the benchmark (default digitbags)')
    p.add_argument('--task', choices=TASKS, default=None,
                   help='megapixel only: the label (default majority)')
    p.add_argument('--canvas', type=canvas_side, default=None,
                   help=f'canvas side in px, at most {MAX_CANVAS} (default 512; megapixel 1500)')
    p.add_argument('--digit-size', type=int, default=None,
                   help='side of one digit in px (default 24; megapixel 28)')
    p.add_argument('--instances', type=int, nargs=2, default=None, metavar=('MIN', 'MAX'),
                   help='digitbags only: digits per bag (default 3 8)')
    p.add_argument('--target', type=int, default=None,
                   help='digitbags only: the digit whose presence is the label (default 9)')
    p.add_argument('--num-train', type=count, default=None, help='default 2000; megapixel 5000')
    p.add_argument('--num-val', type=count, default=None, help='default 400; megapixel 1000')
    p.add_argument('--num-test', type=count, default=None, help='default 400; megapixel 1000')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = p.parse_args(argv)
    wrong = {'digitbags': [('--task', args.task)],
             'megapixel': [('--instances', args.instances), ('--target', args.target)]}
    for flag, value in wrong[args.preset]:
        if value is not None:
            p.error(f'{flag} does not apply to --preset {args.preset}')
    if osp.exists(args.out) and not osp.isdir(args.out):
        p.error(f'--out {args.out!r} exists and is not a directory')
    try:
        args.spec = make_spec(args)
    except ValueError as err:  # the spec's checks, as a usage error
        p.error(str(err))
    return args


def make_spec(args):
    """The generator's spec of the parsed arguments (defaults of the preset filled in);
    ValueError when the spec refuses them."""
    d = DEFAULTS[args.preset]
    num = dict(zip(('train', 'val', 'test'),
                   (v if v is not None else default for v, default in
                    zip((args.num_train, args.num_val, args.num_test), d['num']))))
    sizes = {k: d[k] if getattr(args, k) is None else getattr(args, k)
             for k in ('canvas', 'digit_size')}
    if args.preset == 'megapixel':
        return MegapixelSpec(task=args.task or 'majority', num=num, seed=args.seed, **sizes)
    return DigitBagsSpec(instances=tuple(args.instances or (3, 8)),
                         target=9 if args.target is None else args.target, num=num,
                         seed=args.seed, **sizes)


def main(argv=None):
    args = parse_args(argv)
    if args.preset == 'megapixel':
        counts = generate_megapixel(args.out, args.spec, progress=not args.no_progress)
    else:
        counts = generate(args.out, args.spec, progress=not args.no_progress)
    print(f'{args.preset} written to {args.out}: ' +
          ', '.join(f'{k} {v}' for k, v in counts.items()))


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
