"""Predict any number of images with a gattn model and write JSON: per image the
class, score, top-k, instance boxes (original image pixels) and instance scores.
Unreadable images are named and skipped; the exit code is then non-zero."""
import argparse
import json
import sys

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

import gattn_mm  # noqa: F401
from gattn_mm.apis import GattnInferencer, expand_image_paths
from gattn_mm.datasets.transforms import ImageReadError, read_image
from gattn_mm.models import CheckpointMismatchError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('config', help='model config')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('images', nargs='+', help='image files and/or folders of images')
    p.add_argument('--out', default='results.json', help='JSON file (default results.json)')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--device', default=None, help='e.g. cpu, cuda:0 (default: auto)')
    p.add_argument('--topk', type=int, default=3, help='classes listed per image')
    return p.parse_args(argv)


def to_json(path: str, result: dict) -> dict:
    out = dict(image=path, pred_label=int(result['pred_label']),
               pred_score=float(result['pred_score']), topk=result['topk'])
    if 'pred_class' in result:
        out['pred_class'] = result['pred_class']
    if 'boxes' in result:
        out['boxes'] = np.round(result['boxes'], 2).tolist()
        out['instance_scores'] = [float(s) for s in result['instance_scores']]
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    paths = expand_image_paths(args.images)
    try:
        inferencer = GattnInferencer(args.config, pretrained=args.checkpoint,
                                     device=args.device, topk=args.topk)
    except CheckpointMismatchError as err:
        raise SystemExit(f'error: checkpoint {args.checkpoint}: {err}') from None
    results, failures = [], []
    with Progress(console=console) as progress:
        task = progress.add_task('inference', total=len(paths))
        for start in range(0, len(paths), args.batch_size):
            batch, arrays = [], []
            for path in paths[start:start + args.batch_size]:
                try:
                    arrays.append(np.ascontiguousarray(read_image(path)[..., ::-1]))  # BGR
                    batch.append(path)
                except ImageReadError as err:
                    failures.append(dict(image=path, error=str(err)))
                    # paths are printed whole (no wrapping) and never read as markup
                    console.print(f'[red]error[/red]: {escape(str(err))}', soft_wrap=True)
                    progress.advance(task)
            if arrays:
                for path, res in zip(batch, inferencer(arrays, batch_size=len(arrays))):
                    results.append(to_json(path, res))
                    progress.advance(task)
    with open(args.out, 'w') as f:
        json.dump(dict(results=results, failures=failures), f, indent=1)
    console.print(f'{len(results)} predictions written to {escape(args.out)}',
                  soft_wrap=True)
    if failures:
        console.print(f'[red]{len(failures)} image(s) could not be read:[/red] ' +
                      escape(', '.join(f['image'] for f in failures)), soft_wrap=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
