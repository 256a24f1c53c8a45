"""Generate SynthCells, the microscopy benchmark: H&E-like fields of view of mixed
sizes and aspect ratios whose class is the morphology of the nuclei of a few large
cells (lobed, ring, binucleate, cleaved) among large cells with a round nucleus of
the same size, ink and colour, dark debris and hundreds of small nuclei. No
download; same arguments and seed -> same bytes. The layout is the species folders
that configs/gattn_fungi*.py read: OUT/{train,val,test}/<class>/*.jpg.

--task species (default): every image holds 2-4 markers of its class.
--task presence: classes "absent" (no marker) and the first morphology (1 to
MARKERS MAX - 1 markers)."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os.path as osp

from gattn_mm.datasets.microscopy_generator import MORPHOLOGIES, TASKS, SynthCellsSpec, generate


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def pair(name: str, default):
    return dict(type=count, nargs=2, metavar=('MIN', 'MAX'), default=default,
                help=f'{name} (default {default[0]} {default[1]})')


def parse_args(argv=None):
    d = SynthCellsSpec()
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--task', choices=TASKS, default=d.task, help='default species')
    p.add_argument('--morphologies', nargs='+', choices=MORPHOLOGIES,
                   default=list(d.morphologies),
                   help='marker morphologies: the classes of --task species, the '
                        'first one the marker of --task presence (default all)')
    p.add_argument('--size', **pair('side of an image in px, height and width drawn '
                                    'independently', d.size))
    p.add_argument('--cell-size', **pair('diameter of a large cell in px', d.cell_size))
    p.add_argument('--large-cells', **pair('large cells per image, markers included',
                                           d.large_cells))
    p.add_argument('--markers', **pair('markers per image of --task species',
                                       d.markers))
    p.add_argument('--debris', **pair('dark debris per image', d.debris))
    p.add_argument('--nuclei-per-mpx', type=count, default=d.nuclei_per_mpx,
                   help=f'small normal nuclei per megapixel (default {d.nuclei_per_mpx})')
    p.add_argument('--stain-jitter', type=float, default=d.stain_jitter,
                   help=f'per-image variation of stains, 0-0.5 (default {d.stain_jitter})')
    p.add_argument('--num-train', type=count, default=d.num['train'])
    p.add_argument('--num-val', type=count, default=d.num['val'])
    p.add_argument('--num-test', type=count, default=d.num['test'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = p.parse_args(argv)
    if osp.exists(args.out) and not osp.isdir(args.out):
        p.error(f'--out {args.out!r} exists and is not a directory')
    if not 0 <= args.stain_jitter <= 0.5:
        p.error(f'--stain-jitter must be in [0, 0.5], got {args.stain_jitter}')
    try:
        args.spec = SynthCellsSpec(
            task=args.task, morphologies=tuple(args.morphologies), size=tuple(args.size),
            cell_size=tuple(args.cell_size), large_cells=tuple(args.large_cells),
            markers=tuple(args.markers), debris=tuple(args.debris),
            nuclei_per_mpx=args.nuclei_per_mpx, stain_jitter=args.stain_jitter,
            num=dict(train=args.num_train, val=args.num_val, test=args.num_test),
            seed=args.seed)
    except ValueError as err:  # the spec's checks, as a usage error
        p.error(str(err))
    return args


def main(argv=None):
    args = parse_args(argv)
    counts = generate(args.out, args.spec, progress=not args.no_progress)
    print(f'SynthCells ({args.spec.task}) written to {args.out}: ' +
          ', '.join(f'{k} {v}' for k, v in counts.items()))


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
