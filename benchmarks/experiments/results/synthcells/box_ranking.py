"""Which boxes does a SynthCells model rank first, by its attention and by its reader?

For N boxes per image (``--instances``, more than the test reads, so that the
candidates span cells and debris), each box is a *marker* (it covers a cell of the
class morphology), a *large* cell (round nucleus), or *other* (debris, small cells,
background); per category: the mean within-image rank percentile (100 = first) of the
attention mass of the box and of the reader's evidence (gated pooling log-weight), and
how often each ranks a marker first in the images that hold one.

    python benchmarks/experiments/results/synthcells/box_ranking.py CONFIG CKPT \
        --data-root data/synthcells_p8 --split val --instances 128 --cfg-options ...
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np
from mmengine.config import Config, DictAction

ROOT = osp.abspath(osp.join(osp.dirname(__file__), *[osp.pardir] * 4))
sys.path.insert(0, ROOT)


def percentile(values: np.ndarray) -> np.ndarray:
    """Within-image rank of each value as a percentile, 100 = the largest."""
    order = values.argsort().argsort()
    return 100. * (order + 1) / len(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--split', default='val')
    parser.add_argument('--instances', type=int, default=128)
    parser.add_argument('--limit', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args()
    from gattn_mm.apis import GattnInferencer
    from gattn_mm.evaluation.metrics.instance_localization import covered
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.model.sampler.test_cfg.num_instances = args.instances
    inferencer = GattnInferencer(model=cfg, pretrained=args.checkpoint)
    with open(osp.join(args.data_root, f'{args.split}_instances.json')) as f:
        truth = json.load(f)
    ranks = {k: {'attention': [], 'evidence': []} for k in ('marker', 'large', 'other')}
    firsts = {'attention': [], 'evidence': []}
    for rel, record in sorted(truth.items())[:args.limit]:
        result = inferencer(osp.join(args.data_root, rel))[0]
        boxes = np.asarray(result['boxes'], np.float32)
        kinds = np.asarray(record['kinds'])
        cells = np.asarray(record['boxes'], np.float32).reshape(-1, 4)
        # a box of a kind: one cell of that kind covered (the metric's min_overlap 0.9)
        marker, large = (np.array([covered(cells[pick], box[None], 0.9).any()
                                   for box in boxes], bool)
                         for pick in (kinds != 'round', kinds == 'round'))
        large &= ~marker
        category = np.where(marker, 'marker', np.where(large, 'large', 'other'))
        scores = dict(attention=np.asarray(result['instance_scores'], np.float64),
                      evidence=np.asarray(result['instance_evidence'], np.float64))
        for name, value in scores.items():
            pct = percentile(value)
            for kind in ranks:
                ranks[kind][name] += pct[category == kind].tolist()
            if (kinds != 'round').any():
                firsts[name].append(bool(marker[value.argmax()]))
    out = dict(config=args.config, checkpoint=args.checkpoint, data_root=args.data_root,
               split=args.split, instances=args.instances,
               boxes={k: len(v['attention']) for k, v in ranks.items()},
               mean_rank_percentile={k: {n: round(float(np.mean(v[n])), 1) if v[n] else None
                                         for n in v} for k, v in ranks.items()},
               first_is_marker={n: round(100. * float(np.mean(v)), 1) if v else None
                                for n, v in firsts.items()})
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
