"""Probe: which head should decide? One pass of a trained gattn model over a split,
scored three ways: the instances by the recipe's rule (``instance_head``), the fused
global + instance head (``head``), and the mean of their class probabilities (``both``).
Usage: decision_rules.py CONFIG CHECKPOINT [CHECKPOINT ...] [--data-root DIR]
[--splits val test]; prints one line per checkpoint, split and rule."""
import argparse

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
from mmpretrain.registry import DATASETS, MODELS

import gattn_mm  # noqa: F401


def rules(model, inputs):
    """The image probabilities (B, K) of each decision rule."""
    state = model.forward_state(inputs)
    inst = model.head_logits('instance_head', state).softmax(-1)
    fused = model.head_logits('head', state).softmax(-1)
    return dict(instance_head=inst, head=fused, both=(inst + fused) / 2)


def run(cfg, ckpt, split, batch_size=25):
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    model.eval()
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.split = split
    ds = DATASETS.build(ds_cfg)
    hits, n = {}, 0
    with torch.no_grad():
        for start in range(0, len(ds), batch_size):
            batch = pseudo_collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
            data = model.data_preprocessor(batch, False)
            y = torch.stack([s.gt_label[0] for s in data['data_samples']])
            for name, p in rules(model, data['inputs']).items():
                hits[name] = hits.get(name, 0) + int((p.argmax(-1) == y).sum())
            n += len(y)
    for name, h in hits.items():
        print(f'{ckpt} {split:5s} {name:13s} acc {100 * h / n:.2f}', flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('config')
    p.add_argument('checkpoints', nargs='+')
    p.add_argument('--data-root')
    p.add_argument('--splits', nargs='+', default=['val', 'test'])
    args = p.parse_args()
    cfg = Config.fromfile(args.config)
    if args.data_root:
        cfg.test_dataloader.dataset.data_root = args.data_root
    for ckpt in args.checkpoints:
        for split in args.splits:
            run(cfg, ckpt, split)


if __name__ == '__main__':
    main()
