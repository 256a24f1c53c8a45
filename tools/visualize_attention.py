"""Draw where a gattn model looks: for each image one PNG with the attention heat
overlay, the sampled boxes with rank and score, the predicted class and probability
in a caption, and a strip of the crops."""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from rich.progress import Progress

import gattn_mm  # noqa: F401
from gattn_mm.apis import GattnInferencer, expand_image_paths
from gattn_mm.datasets.transforms import read_image
from gattn_mm.models import CheckpointMismatchError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('config', help='model config')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('images', nargs='+', help='image files and/or folders')
    p.add_argument('--out-dir', required=True, help='folder for the PNGs')
    p.add_argument('--device', default=None, help='e.g. cpu, cuda:0 (default: auto)')
    p.add_argument('--topk', type=int, default=None, help='draw only the first K boxes')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    paths = expand_image_paths(args.images)
    try:
        inferencer = GattnInferencer(args.config, pretrained=args.checkpoint,
                                     device=args.device)
    except CheckpointMismatchError as err:
        raise SystemExit(f'error: checkpoint {args.checkpoint}: {err}') from None
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    with Progress() as progress:
        task = progress.add_task('attention', total=len(paths))
        for path in paths:
            image = read_image(path)
            sample = inferencer([np.ascontiguousarray(image[..., ::-1])],
                                return_datasamples=True)[0]
            drawn = inferencer.draw(image, sample, args.topk)
            out = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '.png')
            cv2.imwrite(out, drawn[..., ::-1])
            written.append(out)
            progress.advance(task)
    print(f'{len(written)} drawings written to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
