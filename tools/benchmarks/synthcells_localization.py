"""Where the instances land on SynthCells: the share of marker cells (the cells whose
nucleus morphology is the class) and of all large cells covered by the boxes a model
reads, the share of boxes holding a large cell, and the pointing game (the attention's
strongest cell on a marker) beside its baseline (a random large cell being a marker).

The ground truth is the generator's ``<split>_instances.json`` (boxes of the large
cells and their morphologies, native pixels); the scores are those of the
``InstanceLocalization`` metric (a cell counts as covered when ``--min-overlap`` of
its box lies inside one read box). Run it on the learned attention
(``configs/gattn_fungi_cpu.py``) and on the contrast prior in its place
(``configs/baselines/synthcells_contrast_attention.py``), same checkpoint:

    python tools/benchmarks/synthcells_localization.py configs/gattn_fungi_cpu.py \\
        work_dirs/ex_sc/gattn/best_accuracy_top1_epoch_9.pth --data-root data/synthcells \\
        --name gattn --out benchmarks/results/localization_synthcells.json
"""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np
from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from gattn_mm.apis.cli import run_tool  # noqa: E402

SCORES = ('target_recall', 'instance_recall', 'box_precision', 'pointing_game',
          'pointing_baseline')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a config of the model (gattn or a baseline)')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--data-root', required=True, help='a SynthCells data root')
    parser.add_argument('--split', default='test', choices=['train', 'val', 'test'])
    parser.add_argument('--limit', type=int, default=None,
                        help='the first N images of the split (default all)')
    parser.add_argument('--min-overlap', type=float, default=0.9,
                        help='covered share of a cell box (default 0.9)')
    parser.add_argument('--name', default=None,
                        help='the row name in --out (default: the config file name)')
    parser.add_argument('--out', default=None,
                        help='a JSON file the row is merged into (by --name)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config settings, as tools/test.py (e.g. the '
                        'num_classes of a presence task)')
    return parser.parse_args(argv)


def well_formed(record) -> bool:
    """Is ``record`` one image's entry: as many kinds as boxes of 4 numbers?"""
    if not isinstance(record, dict):
        return False
    boxes, kinds = record.get('boxes'), record.get('kinds')
    return (isinstance(boxes, list) and isinstance(kinds, list) and len(boxes) == len(kinds)
            and all(isinstance(b, list) and len(b) == 4 and all(
                isinstance(v, (int, float)) for v in b) for b in boxes))


def ground_truth(data_root: str, split: str) -> dict:
    """{relative image path: {'boxes': (n, 4), 'kinds': [n]}} of the generator."""
    path = osp.join(data_root, f'{split}_instances.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file; --data-root must be a SynthCells '
                                f'data root (tools/dataset_converters/make_synthcells.py)')
    expected = ('a JSON object {image path: {"boxes": [[x1, y1, x2, y2], ...], "kinds": '
                '[morphology, ...]}} as make_synthcells.py writes it')
    try:
        with open(path) as f:
            truth = json.load(f)
    except ValueError as e:
        raise ValueError(f'{path}: not JSON ({e}); expected {expected}') from None
    bad = next((rel for rel, rec in truth.items() if not well_formed(rec)),
               None) if isinstance(truth, dict) else '<top level>'
    if bad is not None:
        raise ValueError(f'{path}: entry {bad!r} is not what the generator writes; '
                         f'expected {expected}')
    return truth


def localize(args) -> dict:
    """Run the model over the split and score where its boxes land."""
    from gattn_mm.apis import GattnInferencer
    from gattn_mm.evaluation.metrics.instance_localization import InstanceLocalization

    truth = ground_truth(args.data_root, args.split)
    items = sorted(truth.items())[:args.limit]
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    inferencer = GattnInferencer(model=cfg, pretrained=args.checkpoint)
    metric = InstanceLocalization(min_overlap=args.min_overlap)
    start = time.time()
    for rel, record in items:
        result = inferencer(osp.join(args.data_root, rel))[0]
        kinds = np.asarray(record['kinds'])
        metric.process(None, [dict(
            boxes=result['boxes'], attention=result['attention'],
            img_shape=result['image_size'], gt_bboxes=np.asarray(record['boxes'], np.float32),
            # the metric's "digits": 1 for a marker cell, 0 for a round-nucleus one
            gt_digits=(kinds != 'round').astype(np.int64), target_digit=np.array([1]))])
    scores = metric.compute_metrics(metric.results)
    return dict(config=args.config, checkpoint=args.checkpoint, data_root=args.data_root,
                split=args.split, images=len(items), min_overlap=args.min_overlap,
                seconds=round(time.time() - start, 1),
                **{k: round(float(scores[k]), 2) if np.isfinite(scores[k]) else None
                   for k in SCORES})  # None: undefined (no marker in the images)


def main(argv=None):
    args = parse_args(argv)
    row = localize(args)
    name = args.name or osp.splitext(osp.basename(args.config))[0]
    print(json.dumps(dict(name=name, **row)))
    if args.out:
        rows = {}
        if osp.isfile(args.out):
            with open(args.out) as f:
                rows = json.load(f)
            if not isinstance(rows, dict) or not all(isinstance(r, dict) and 'checkpoint' in r
                                                     for r in rows.values()):
                raise ValueError(f'--out {args.out}: not a file of this tool (a JSON object '
                                 f'of rows by name); give another path')
        rows[name] = row
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1, sort_keys=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
