"""Generate the DigitBags benchmark: large canvases with a few small UCI digits;
label 1 iff the target digit is present. Same arguments and seed -> same bytes."""
import argparse

from gattn_mm.datasets.digitbags_generator import DigitBagsSpec, generate


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--canvas', type=int, default=512, help='canvas side in px (default 512)')
    p.add_argument('--digit-size', type=int, default=24,
                   help='side of one digit on the canvas in px (default 24)')
    p.add_argument('--instances', type=int, nargs=2, default=(3, 8), metavar=('MIN', 'MAX'),
                   help='digits per image (default 3 8)')
    p.add_argument('--target', type=int, default=9,
                   help='the digit whose presence is the label (default 9)')
    p.add_argument('--num-train', type=int, default=2000)
    p.add_argument('--num-val', type=int, default=400)
    p.add_argument('--num-test', type=int, default=400)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    spec = DigitBagsSpec(canvas=args.canvas, digit_size=args.digit_size,
                         instances=tuple(args.instances), target=args.target,
                         num=dict(train=args.num_train, val=args.num_val, test=args.num_test),
                         seed=args.seed)
    counts = generate(args.out, spec, progress=not args.no_progress)
    print(f'DigitBags written to {args.out}: ' +
          ', '.join(f'{k} {v}' for k, v in counts.items()))


if __name__ == '__main__':
    main()
