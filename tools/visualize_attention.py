"""Draw where a gattn model looks: for each image one PNG with the attention heat
overlay, the sampled boxes with rank and score, the predicted class and probability
in a caption, and a strip of the crops. A whole-slide image (with a native-resolution
config, e.g. configs/gattn_digitbags_native.py) is drawn on its thumbnail, the crops
read from its native pixels. Unreadable images are named and skipped (the exit code
is then non-zero); two inputs never share an output file, a file that is not a
drawing of gattn-mm is never overwritten (refused before the model runs), and each
PNG is written atomically (a failed write, e.g. a full disk, stops the tool naming
the file)."""
import argparse
import os
import os.path as osp
import sys

import numpy as np
from rich.progress import Progress

import gattn_mm  # noqa: F401
from gattn_mm.apis import GattnInferencer, expand_image_paths
from gattn_mm.apis.gattn_inferencer import write_png
from gattn_mm.apis.outputs import refuse_foreign_outputs
from gattn_mm.datasets.slides import open_slide
from gattn_mm.datasets.transforms import ImageReadError, read_image
from gattn_mm.datasets.transforms.loading import DEFAULT_MAX_PIXELS
from gattn_mm.apis.cli import (checkpoint_arg, checkpoint_errors_exit,
                               refuse_overwriting_inputs)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('config', help='model config')
    p.add_argument('checkpoint', type=checkpoint_arg, help='checkpoint file (or http(s) URL)')
    p.add_argument('images', nargs='+', help='image files and/or folders')
    p.add_argument('--out-dir', required=True,
                   help='folder for the PNGs (created; it or its nearest existing parent '
                   'must be a writable folder)')
    p.add_argument('--device', default=None, help='e.g. cpu, cuda:0 (default: auto)')
    p.add_argument('--topk', type=int, default=None,
                   help='draw only the first K boxes (>= 1; default: all)')
    p.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                   help='refuse images of more pixels, checked before decoding (>= 1)')
    args = p.parse_args(argv)
    for name in ('topk', 'max_pixels'):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    problem = out_dir_problem(args.out_dir)
    if problem:
        p.error(f'--out-dir {args.out_dir}: {problem}')
    return args


def out_dir_problem(out_dir: str):
    """Why ``out_dir`` cannot hold the drawings (checked before the model is built,
    nothing created), or None: it must be a writable folder, or creatable in the
    nearest existing parent (a writable folder)."""
    if not out_dir.strip():
        return 'empty; give a folder for the PNGs'
    path = osp.abspath(out_dir)
    while not osp.exists(path):
        if osp.islink(path):  # a dangling link: makedirs would fail on it
            return f'{path} is a broken link'
        path = osp.dirname(path)
    if not osp.isdir(path):
        return f'{path} is not a folder' if path == osp.abspath(out_dir) else \
            f'cannot be created: {path} is not a folder'
    if not os.access(path, os.W_OK | os.X_OK):
        return f'{path} is not writable'
    return None


def output_names(paths, out_dir):
    """One PNG per input: ``<stem>.png``, or ``<stem>.<ext>.png`` where two inputs
    share a stem (``x.png`` and ``x.tif``), or a numbered name where they still clash."""
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    names, taken = [], set()
    for path, stem in zip(paths, stems):
        name = stem if stems.count(stem) == 1 else osp.basename(path)
        candidate, i = name, 1
        while candidate in taken:
            candidate, i = f'{name}_{i}', i + 1
        taken.add(candidate)
        names.append(osp.join(out_dir, candidate + '.png'))
    return names


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = expand_image_paths(args.images)
    except FileNotFoundError as err:
        raise SystemExit(f'error: {err}') from None
    outputs = output_names(paths, args.out_dir)
    refuse_overwriting_inputs(outputs, paths, '--out-dir')
    refuse_foreign_outputs(outputs, '--out-dir')  # a user's x.png is never replaced
    with checkpoint_errors_exit(args.checkpoint):
        inferencer = GattnInferencer(args.config, pretrained=args.checkpoint,
                                     device=args.device)
    try:
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as err:
        raise SystemExit(f'error: --out-dir {args.out_dir}: cannot be created '
                         f'({err.strerror or err})') from None
    written, failed = [], []

    def save(out: str, drawing: np.ndarray) -> None:
        try:
            write_png(out, drawing)
        except OSError as err:  # unwritable folder, full disk: every next one fails too
            raise SystemExit(f'error: cannot write {out}: {err.strerror or err} '
                             f'({len(written)} drawings written before it)') from None
        written.append(out)

    with Progress() as progress:
        task = progress.add_task('attention', total=len(paths))
        for path, out in zip(paths, outputs):
            try:
                if inferencer.is_slide(path):  # drawn on its thumbnail
                    open_slide(path, args.max_pixels).close()  # refused here if bad
                    sample = inferencer([path], return_datasamples=True)[0]
                    save(out, inferencer.draw_slide(path, sample, args.topk))
                    progress.advance(task)
                    continue
                image = read_image(path, args.max_pixels)
            except ImageReadError as err:
                print(f'error: {err}', file=sys.stderr)
                failed.append(path)
                progress.advance(task)
                continue
            sample = inferencer([np.ascontiguousarray(image[..., ::-1])],
                                return_datasamples=True)[0]
            save(out, inferencer.draw(image, sample, args.topk))
            progress.advance(task)
    print(f'{len(written)} drawings written to {args.out_dir}')
    if failed:
        raise SystemExit(f'{len(failed)} image(s) could not be read: {", ".join(failed)}')
    return written


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
