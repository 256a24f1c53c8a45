"""Write a pyramidal TIFF slide of any size with a few UCI digits at known level-0
positions on a textured background (test data for the slide path; no download).

The layout is a DigitBags bag (512 px reference, 24 px digits) scaled to --side, so
the same --seed and --labels give the same picture at every size. Tiles are 256 px,
zlib-compressed; a tile without a digit is one compressed tile repeated, so a
60,000^2 slide is about 70 MB. Prints the level-0 boxes (xyxy) of the digits as JSON
and writes them beside the slide (<out>.json)."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import json
import sys

from gattn_mm.datasets.slide_writer import DigitSlideSpec, write_digit_slide


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='the .tif to write')
    p.add_argument('--side', type=int, required=True, help='level-0 side in pixels')
    p.add_argument('--labels', type=int, nargs='+', default=[9, 3, 5],
                   help='the digits to plant (default 9 3 5)')
    p.add_argument('--seed', type=int, default=0, help='chooses glyphs and positions')
    args = p.parse_args(argv)
    if not args.out.lower().endswith(('.tif', '.tiff')):
        p.error(f'--out {args.out}: the slide is a TIFF (.tif or .tiff)')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        spec = DigitSlideSpec(side=args.side, labels=args.labels, seed=args.seed)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    info = write_digit_slide(args.out, spec)
    with open(args.out + '.json', 'w') as f:
        json.dump(info, f)
    json.dump(info, sys.stdout)
    print()


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
