# Reader probe: how well does the MIL reader generalise to unseen digits, and what
# helps? The glance of the published checkpoint picks the boxes once (12 top cells
# per training bag, 24 per val bag, as the recipe does); the crops are cached at 1.5x
# the box side (48 px) so that geometric augmentation can be applied by one affine
# resampling to the 32 px crop the reader sees. A fresh reader (PyTorch default
# initialisation, as in the recipe) trains with FusionHead's instance loss only.
# Options (JSON): steps, wd, lr, rot (deg), shear (deg), scale (+-), shift (fraction
# of the box), ema (momentum, 0 = off), ls (label smoothing), drop (dropout before
# the instance classifier), seed.
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from PIL import Image

import gattn_mm  # noqa: F401
from gattn_mm.runtime import safe_torch_load
from mmpretrain.registry import MODELS

opts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
torch.manual_seed(opts.get('seed', 0))
torch.set_num_threads(opts.get('threads', 2))
ROOT = Path('data/digitbags')
CKPT = opts.get('ckpt', 'checkpoints/gattn_r18_digitbags_20261128-e4d68300.pth')
CACHE = Path(opts.get('cache', '/tmp/reader_probe_cache.pt'))


def extract():
    cfg = Config.fromfile('configs/gattn_digitbags.py')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, CKPT, map_location='cpu', logger='silent')
    model.eval()
    out = {}
    for split, n in (('train', 12), ('val', 24)):
        model.sampler.test_num_instances = n
        lines = (ROOT / f'{split}.txt').read_text().split('\n')[:-1]
        crops, labels = [], []
        for i in range(0, len(lines), 50):
            chunk = lines[i:i + 50]
            x = torch.stack([torch.from_numpy(np.asarray(
                Image.open(ROOT / line.split()[0]))).float() for line in chunk])
            x = ((x - 127.5) / 63.75)[:, None]
            with torch.no_grad():
                att, _ = model.neck(model.backbone(model.glance(x.expand(-1, 3, -1, -1))))
                _, boxes = model.sampler(att, (512, 512))  # (B, N, 4)
                c = (boxes[..., :2] + boxes[..., 2:]) / 2
                half = (boxes[..., 2:] - boxes[..., :2]) * 0.75
                big = torch.cat([c - half, c + half], -1)
                rois = torch.cat([torch.arange(len(chunk)).repeat_interleave(n)[:, None].float(),
                                  big.flatten(0, 1)], 1)
                from torchvision.ops import roi_align
                crop = roi_align(x, rois, (48, 48), aligned=True)
            crops.append(crop.view(len(chunk), n, 48, 48).half())
            labels += [int(line.split()[1]) for line in chunk]
        out[split] = (torch.cat(crops), torch.tensor(labels))
        print(split, out[split][0].shape, flush=True)
    torch.save(out, CACHE)
    return out


data = safe_torch_load(str(CACHE)) if CACHE.exists() else extract()  # tensors only
tr, ytr = data['train']
va, yva = data['val']


def warp(x: torch.Tensor, train: bool) -> torch.Tensor:
    """(M, 1, 48, 48) -> (M, 3, 32, 32): the centre 2/3, randomly warped in training."""
    M = x.size(0)
    s = torch.full((M,), 2 / 3)
    theta = torch.zeros(M, 2, 3)
    a = torch.zeros(M)
    sh = torch.zeros(M)
    if train:
        a = (torch.rand(M) * 2 - 1) * math.radians(opts.get('rot', 0))
        sh = (torch.rand(M) * 2 - 1) * math.radians(opts.get('shear', 0))
        s = s * torch.exp((torch.rand(M) * 2 - 1) * opts.get('scale', 0))
        theta[:, :, 2] = (torch.rand(M, 2) * 2 - 1) * opts.get('shift', 0) * 2 / 3 * 2
    cos, sin, t = torch.cos(a), torch.sin(a), torch.tan(sh)
    theta[:, 0, 0] = s * cos
    theta[:, 0, 1] = s * (-sin + cos * t)
    theta[:, 1, 0] = s * sin
    theta[:, 1, 1] = s * (cos + sin * t)
    grid = F.affine_grid(theta, (M, 1, 32, 32), align_corners=False)
    return F.grid_sample(x.float(), grid, align_corners=False).expand(-1, 3, -1, -1)


net = MODELS.build(dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,),
                        zero_init_residual=False, init_cfg=[]))
fc = torch.nn.Linear(128, 2)
drop = torch.nn.Dropout(opts.get('drop', 0.))
if opts.get('finetune'):  # start from the published reader and instance classifier
    sd = safe_torch_load(CKPT)['state_dict']
    net.load_state_dict({k[len('reader.'):]: v for k, v in sd.items()
                         if k.startswith('reader.')})
    fc.load_state_dict({k[len('instance_head.fc.'):]: v for k, v in sd.items()
                        if k.startswith('instance_head.fc.')})
params = list(net.parameters()) + list(fc.parameters())
steps = opts.get('steps', 1250)
opt = torch.optim.AdamW(params, lr=opts.get('lr', 1e-3), weight_decay=opts.get('wd', 1e-4))
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts.get('lr', 1e-3), total_steps=steps,
                                            pct_start=opts.get('warmup', 0.05), anneal_strategy='cos')
ema_m = opts.get('ema', 0)
if ema_m:
    ema = torch.optim.swa_utils.AveragedModel(
        torch.nn.ModuleList([net, fc]),
        multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema_m), use_buffers=True)


def evaluate(modules) -> tuple:
    n, f = modules
    n.eval()
    fp = fn = 0
    with torch.no_grad():
        for i in range(0, len(va), 50):
            x = warp(va[i:i + 50].flatten(0, 1)[:, None], False)
            lg = f(n(x)[-1].mean((2, 3))).view(-1, va.size(1), 2)
            pred = ((lg[..., 1] - lg[..., 0]).max(1).values > 0).long()
            y = yva[i:i + 50]
            fp += int(((pred == 1) & (y == 0)).sum())
            fn += int(((pred == 0) & (y == 1)).sum())
    n.train()
    return 1 - (fp + fn) / len(va), fp, fn


t0 = time.time()
print('start val %.4f fp %d fn %d' % evaluate((net, fc)), flush=True)
B, N = 32, tr.size(1)
ls = opts.get('ls', 0.)
print('#', json.dumps(opts), flush=True)
for step in range(steps):
    idx = torch.randint(0, len(tr), (B,))
    x = warp(tr[idx].flatten(0, 1)[:, None], True)
    logits = fc(drop(net(x)[-1].mean((2, 3)))).view(B, N, 2)
    lp = logits.log_softmax(-1)
    y = ytr[idx]
    own = lp.gather(2, y.view(B, 1, 1).expand(B, N, 1))[..., 0]
    other = lp.gather(2, (1 - y).view(B, 1, 1).expand(B, N, 1))[..., 0]
    own = (1 - ls) * own + ls * 0.5 * (own + other)
    # hardneg: a negative bag's loss also weighs its worst crop (the one a false
    # positive would come from), with weight hardneg.
    neg = own.mean(1) + opts.get('hardneg', 0.) * own.min(1).values
    loss = -torch.where(y == 0, neg, own.max(1).values).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    if ema_m:
        ema.update_parameters(torch.nn.ModuleList([net, fc]))
    if (step + 1) % opts.get('every', 250) == 0 or step + 1 == steps:
        acc, fp, fn = evaluate((net, fc))
        line = f'step {step + 1} t {time.time() - t0:.0f}s loss {loss.item():.3f} val {acc:.4f} fp {fp} fn {fn}'
        if ema_m:
            eacc, efp, efn = evaluate(tuple(ema.module))
            line += f' | ema val {eacc:.4f} fp {efp} fn {efn}'
        print(line, flush=True)
