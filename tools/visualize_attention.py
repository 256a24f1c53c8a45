"""Draw where a gattn model looks: for each image one PNG with the attention heat
overlay, the sampled boxes with rank and score, the predicted class and probability
in a caption, and a strip of the crops. A whole-slide image (with a native-resolution
config, e.g. configs/gattn_digitbags_native.py) is drawn on its thumbnail, the crops
read from its native pixels. Unreadable images are named and skipped (the exit code
is then non-zero); each PNG is named after its image's path relative to the folder
holding all the images (a/x.png, b/x.png -> DIR/a/x.png, DIR/b/x.png), a file that is not a
drawing of gattn-mm is never overwritten (refused before the model runs), and each
PNG is written atomically (a failed write, e.g. a full disk, stops the tool naming
the file)."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os
import os.path as osp
import sys

import numpy as np
from rich.progress import Progress

import gattn_mm  # noqa: F401
from gattn_mm.apis import GattnInferencer, expand_image_paths, output_paths
from gattn_mm.apis.gattn_inferencer import write_png
from gattn_mm.apis.outputs import refuse_foreign_outputs
from gattn_mm.datasets.slides import open_slide
from gattn_mm.datasets.transforms import ImageReadError, read_image
from gattn_mm.datasets.transforms.loading import DEFAULT_MAX_PIXELS
from gattn_mm.apis.cli import (MODEL_USAGE, add_model_arguments, canvas_slide_refusal,
                               checkpoint_errors_exit, refuse_overwriting_inputs,
                               resolve_model_arguments)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, usage=f'%(prog)s {MODEL_USAGE} IMAGES... --out-dir DIR [opts]')
    add_model_arguments(p, images=True)
    p.add_argument('--out-dir', required=True,
                   help='folder for the PNGs, named after the images\' paths relative to '
                   'the folder holding them all (created; it or its nearest existing '
                   'parent must be a writable folder)')
    p.add_argument('--device', default=None, help='e.g. cpu, cuda:0 (default: auto)')
    p.add_argument('--topk', type=int, default=None,
                   help='draw only the first K boxes (>= 1; default: all)')
    p.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                   help='refuse images of more pixels, checked before decoding (>= 1)')
    args = p.parse_args(argv)
    resolve_model_arguments(p, args, images=True)
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


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = expand_image_paths(args.images)
    except FileNotFoundError as err:
        raise SystemExit(f'error: {err}') from None
    try:
        outputs = output_paths(paths, args.out_dir, '.png')  # a/x.png, b/x.png: a/, b/
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    refuse_overwriting_inputs(outputs, paths, '--out-dir')
    refuse_foreign_outputs(outputs, '--out-dir')  # a user's x.png is never replaced
    with checkpoint_errors_exit(args.checkpoint or args.model_name):
        inferencer = GattnInferencer(args.config, pretrained=args.checkpoint or True,
                                     device=args.device)
    try:
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as err:
        raise SystemExit(f'error: --out-dir {args.out_dir}: cannot be created '
                         f'({err.strerror or err})') from None
    written, failed = [], []

    def save(out: str, drawing: np.ndarray) -> None:
        try:
            os.makedirs(osp.dirname(out), exist_ok=True)
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
                why = canvas_slide_refusal(path, args.max_pixels, args.config) or err
                print(f'error: {why}', file=sys.stderr)
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
