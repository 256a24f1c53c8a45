"""Predict any number of images with a gattn model and write JSON: per image the
class, score, top-k, instance boxes (original image pixels), their attention masses
(`instance_scores`), what the reader found in each (`instance_probs`, its class
probabilities; `instance_evidence`: log-odds against the "absent" class, or the log-
probability of its own class; `instance_labels`: the class it votes for, for models
without an "absent" class), the weights the fused head gave them (`fusion_weights`)
and the instances that decided the label (`deciding_instances`: the one of most
evidence of a presence task, the votes for the predicted class otherwise).
Whole-slide images (pyramidal TIFF, OpenSlide formats) are read lazily by a
native-resolution config (e.g. configs/gattn_digitbags_native.py), boxes in level-0
pixels. Unreadable or too large images are named and skipped (the exit code is then
non-zero); the JSON is rewritten atomically after every batch, so the results so far
survive an interruption. The JSON also holds each image's size, the box format (xyxy,
level-0 pixels), the classes, the config and the checkpoint with its sha256.
On request: --geojson DIR (one FeatureCollection per image, one Polygon per instance
in level-0 pixels; QuPath imports it), --heatmap DIR (the attention as a float32 TIFF
at a pyramid level), --csv FILE (one row per image: path, size, prediction, scores).
No file that gattn-mm did not write is overwritten; output paths are checked before
the model runs."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import json
import sys

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

import gattn_mm  # noqa: F401
from gattn_mm.apis import GattnInferencer, expand_image_paths
from gattn_mm.runtime import AtomicLocalBackend
from gattn_mm.datasets.slides import open_slide
from gattn_mm.datasets.transforms import ImageReadError, read_image
from gattn_mm.datasets.transforms.loading import DEFAULT_MAX_PIXELS
from gattn_mm.apis.cli import (MODEL_USAGE, add_model_arguments, canvas_slide_refusal,
                               checkpoint_errors_exit, refuse_overwriting_inputs,
                               resolve_model_arguments)
from gattn_mm.apis import output_paths
from gattn_mm.apis.exports import (BOX_FORMAT, GEOJSON_SUFFIX, HEATMAP_SUFFIX,
                                   check_export_dir, check_export_paths, csv_row,
                                   instances_geojson, provenance, write_csv, write_geojson,
                                   write_heatmap)
from gattn_mm.apis.outputs import writable_file_problem


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, usage=f'%(prog)s {MODEL_USAGE} IMAGES... [opts]')
    add_model_arguments(p, images=True)
    p.add_argument('--out', default='results.json', help='JSON file (default results.json)')
    p.add_argument('--geojson', metavar='DIR', default=None,
                   help='write DIR/<image>.geojson: the instances as polygons in level-0 '
                   'pixels (QuPath: File > Import objects)')
    p.add_argument('--heatmap', metavar='DIR', default=None,
                   help='write DIR/<image>.attention.tif: the attention, float32, at a '
                   'pyramid level (longest side <= 2048 px)')
    p.add_argument('--csv', metavar='FILE', default=None,
                   help='CSV, one row per image: path, width, height, prediction, scores')
    p.add_argument('--batch-size', type=int, default=4, help='images per forward (>= 1)')
    p.add_argument('--device', default=None, help='e.g. cpu, cuda:0 (default: auto)')
    p.add_argument('--topk', type=int, default=3, help='classes listed per image (>= 1)')
    p.add_argument('--max-pixels', type=int, default=None,
                   help=f'refuse images (and slide reads) of more pixels, checked before '
                   f'decoding (default: the config\'s LoadMicroscopyImage, else '
                   f'{DEFAULT_MAX_PIXELS:,})')
    args = p.parse_args(argv)
    resolve_model_arguments(p, args, images=True)
    for name in ('batch_size', 'topk', 'max_pixels'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    for option, path in (('--out', args.out), ('--csv', args.csv)):
        problem = path and writable_file_problem(path)  # tried: root ignores permission bits
        if problem:
            p.error(f'{option} {path}: not a writable file path ({problem})')
    return args


def save(path: str, results: list, failures: list, model: dict) -> None:
    text = json.dumps(dict(model=model, **BOX_FORMAT, results=results, failures=failures),
                      indent=1)
    AtomicLocalBackend().put_text(text, path)


def model_files(args) -> tuple:
    """(config, checkpoint) files of the run: a published model's packaged ones (its
    checkpoint hash-checked, offline), or those given."""
    if args.model_name is None:
        return args.config, args.checkpoint
    from mmpretrain.apis import ModelHub

    from gattn_mm.apis import release_url
    from gattn_mm.runtime import download_checked
    config = ModelHub.get(args.model_name).config
    return (getattr(config, 'filename', None) or str(config),
            download_checked(release_url(args.model_name)))


def check_outputs(args, paths: list) -> dict:
    """{'geojson' / 'heatmap': {image: its file}} of the exports asked for; every
    output checked before the work: none is an input, the folders take files, no file
    that gattn-mm did not write is replaced."""
    refuse_overwriting_inputs([args.out], paths, '--out')
    if args.csv:
        refuse_overwriting_inputs([args.csv], paths, '--csv')
        check_export_paths([args.csv], '--csv')
    exports = {}
    for key, folder, suffix in (('geojson', args.geojson, GEOJSON_SUFFIX),
                                ('heatmap', args.heatmap, HEATMAP_SUFFIX)):
        if folder is not None:
            try:  # a/x.png, b/x.png -> DIR/a/x<suffix>, DIR/b/x<suffix>
                files = output_paths(paths, folder, suffix)
            except ValueError as err:
                raise SystemExit(f'error: --{key}: {err}') from None
            refuse_overwriting_inputs(files, paths, f'--{key}')
            check_export_paths(files, f'--{key}')
            check_export_dir(folder, f'--{key}')
            exports[key] = dict(zip(paths, files))
    return exports


def to_json(path: str, result: dict) -> dict:
    """One image's entry. A multi-label model's is every class it predicts
    (``pred_labels``, ``pred_classes``, their ``pred_scores``: none, one or several;
    no single ``pred_label``); a single-label model's is ``pred_label`` (and class)."""
    if result.get('multi_label'):
        out = dict(image=path, multi_label=True, pred_labels=result['pred_labels'],
                   pred_scores=result['pred_scores_of_labels'], topk=result['topk'])
        if 'pred_classes' in result:
            out['pred_classes'] = result['pred_classes']
    else:
        out = dict(image=path, pred_label=int(result['pred_label']),
                   pred_score=float(result['pred_score']), topk=result['topk'])
        if 'pred_class' in result:
            out['pred_class'] = result['pred_class']
    if 'image_size' in result:
        out['height'], out['width'] = result['image_size']
    if 'boxes' in result:
        out['boxes'] = np.round(result['boxes'], 2).tolist()
        out['instance_scores'] = [float(s) for s in result['instance_scores']]
    for name, digits in (('instance_evidence', 4), ('fusion_weights', 4),
                         ('instance_probs', 4)):
        if name in result:
            out[name] = np.round(result[name].astype(float), digits).tolist()
    for name in ('instance_labels', 'deciding_instances'):
        if name in result:
            out[name] = [int(i) for i in result[name]]
    return out


def read_input(inferencer: GattnInferencer, path: str, max_pixels: int,
               model: str = 'the model'):
    """The image as a BGR array, or the path of a slide the model reads lazily (opened
    here once so that a bad one is refused before the model runs); a slide that
    ``model`` (a canvas model) would read whole is refused with what reads it."""
    if inferencer.is_slide(path):
        open_slide(path, max_pixels).close()
        return path
    try:
        image = read_image(path, max_pixels)
    except ImageReadError as err:  # a slide given to a canvas model: say what reads it
        why = canvas_slide_refusal(path, max_pixels, model)
        raise ImageReadError(why) if why else err
    return np.ascontiguousarray(image[..., ::-1])


def predict(inferencer: GattnInferencer, paths: list, inputs: list, fail) -> list:
    """``(path, result)`` per input. An input that fails inside the model (a slide
    whose tiles cannot be read) is passed to ``fail(path, err)``: the batch is run
    again one by one, so that only that input is lost."""
    try:
        return list(zip(paths, inferencer(inputs, batch_size=len(inputs))))
    except (ImageReadError, MemoryError) as err:
        if len(inputs) == 1:
            fail(paths[0], err)
            return []
    return [pair for path, input_ in zip(paths, inputs)
            for pair in predict(inferencer, [path], [input_], fail)]


def main(argv=None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    try:
        paths = expand_image_paths(args.images)
    except FileNotFoundError as err:
        raise SystemExit(f'error: {err}') from None
    exports = check_outputs(args, paths)
    if not paths:
        console.print(f'[red]error[/red]: no images in {escape(" ".join(args.images))}',
                      soft_wrap=True)
        return 2
    with checkpoint_errors_exit(args.checkpoint or args.model_name):
        inferencer = GattnInferencer(args.config, pretrained=args.checkpoint or True,
                                     device=args.device, topk=args.topk,
                                     max_pixels=args.max_pixels)
    model = dict(**provenance(*model_files(args)), classes=inferencer.classes and
                 list(inferencer.classes))
    results, failures, rows = [], [], []
    with Progress(console=console) as progress:
        task = progress.add_task('inference', total=len(paths))

        def fail(path: str, err: Exception) -> None:
            error = f'{path}: out of memory while reading it' \
                if isinstance(err, MemoryError) else str(err)
            failures.append(dict(image=path, error=error))
            # paths are printed whole (no wrapping) and never read as markup
            console.print(f'[red]error[/red]: {escape(error)}', soft_wrap=True)
            progress.advance(task)

        for start in range(0, len(paths), args.batch_size):
            batch, inputs = [], []
            for path in paths[start:start + args.batch_size]:
                try:
                    inputs.append(read_input(inferencer, path, inferencer.max_pixels,
                                             args.config))
                    batch.append(path)
                except (ImageReadError, MemoryError) as err:
                    fail(path, err)
            if inputs:
                for path, res in predict(inferencer, batch, inputs, fail):
                    if not np.isfinite(float(res['pred_score'])):
                        fail(path, ValueError(
                            f'{path}: the model\'s scores are not finite (NaN/inf); check '
                            f'the config\'s data_preprocessor (mean, std) and the checkpoint'))
                        continue
                    entry = to_json(path, res)
                    if 'geojson' in exports:
                        entry['geojson'] = exports['geojson'][path]
                        write_geojson(entry['geojson'],
                                      instances_geojson(path, res, inferencer.classes))
                    if 'heatmap' in exports:
                        entry['heatmap'] = exports['heatmap'][path]
                        write_heatmap(entry['heatmap'], res)
                    results.append(entry)
                    rows.append(csv_row(path, res, inferencer.classes))
                    progress.advance(task)
            save(args.out, results, failures, model)
            if args.csv:
                write_csv(args.csv, rows, {k: model[k] for k in
                                           ('config', 'checkpoint', 'checkpoint_sha256')})
    console.print(f'{len(results)} predictions written to {escape(args.out)}',
                  soft_wrap=True)
    if failures:
        console.print(f'[red]{len(failures)} image(s) could not be read:[/red] ' +
                      escape(', '.join(f['image'] for f in failures)), soft_wrap=True)
        return 1
    return 0


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
