"""Probe: instance-level shift TTA on the published DigitBags models (val and test): every
one of the 24 test boxes also read shifted by a few canvas pixels, the per-instance log-
probabilities averaged over the views (for two classes the same decision as averaging
the reader features, which InstanceSampler(test_cfg=dict(views=...)) does). Run with the checkpoints
as arguments; SHIFTS below are the variants compared."""
import sys, torch, itertools
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS, DATASETS
import gattn_mm  # noqa
from gattn_mm.models.utils import pool_feature
torch.set_num_threads(2)
cfg = Config.fromfile('configs/gattn_digitbags.py')
cfg.model.sampler.test_cfg.views = None  # the probe makes its own views
SHIFTS = {
    'none': [(0, 0)],
    'plus4': [(0, 0), (4, 0), (-4, 0), (0, 4), (0, -4)],
    'grid4': list(itertools.product((-4, 0, 4), repeat=2)),
    'plus8': [(0, 0), (8, 0), (-8, 0), (0, 8), (0, -8)],
    'grid6': list(itertools.product((-6, 0, 6), repeat=2)),
}
def run(ckpt, split):
    model = MODELS.build(cfg.model); load_checkpoint(model, ckpt, map_location='cpu', logger='silent'); model.eval()
    ds_cfg = cfg.test_dataloader.dataset.copy(); ds_cfg.split = split
    ds = DATASETS.build(ds_cfg)
    ev = {k: [] for k in SHIFTS}; labels = []
    with torch.no_grad():
        for start in range(0, len(ds), 50):
            batch = pseudo_collate([ds[i] for i in range(start, min(start + 50, len(ds)))])
            data = model.data_preprocessor(batch, False)
            x = data['inputs']; labels += [int(s.gt_label) for s in data['data_samples']]
            boxes = model.forward_state(x).boxes; B, N, _ = boxes.shape; H, W = x.shape[-2:]
            for name, shifts in SHIFTS.items():
                logits = 0
                for dx, dy in shifts:
                    b = boxes + boxes.new_tensor([dx, dy, dx, dy])
                    b[..., 0::2] -= (b[..., 0].clamp(max=0) + (b[..., 2] - W).clamp(min=0))[..., None]
                    b[..., 1::2] -= (b[..., 1].clamp(max=0) + (b[..., 3] - H).clamp(min=0))[..., None]
                    crops = model.sampler.crop(x, b)
                    f = pool_feature(model.reader_module(crops)).view(B, N, -1)
                    logits = logits + model.instance_head.fc(f).log_softmax(-1)
                logits = logits / len(shifts)
                ev[name].append((logits[..., 1] - logits[..., 0]).max(1).values)
    y = torch.tensor(labels)
    for name in SHIFTS:
        e = torch.cat(ev[name]); pred = (e > 0).long()
        fp = int(((pred == 1) & (y == 0)).sum()); fn = int(((pred == 0) & (y == 1)).sum())
        print(f'{ckpt[-20:]} {split:5s} {name:6s} acc {100 * (pred == y).float().mean():.2f} FP {fp} FN {fn}', flush=True)
for ckpt in sys.argv[1:]:
    for split in ('val', 'test'):
        run(ckpt, split)
