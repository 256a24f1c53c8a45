import json, sys, time, torch, numpy as np, gattn_mm
from PIL import Image
from torchvision.ops import roi_align
from mmpretrain.registry import MODELS
torch.manual_seed(0); torch.set_num_threads(2)
root = sys.argv[2] if len(sys.argv) > 2 else 'data/digitbags'
cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
def bags(split, n):
    lines = open(f'{root}/{split}.txt').read().split('\n')[:-1][:n]
    inst = json.load(open(f'{root}/{split}_instances.json'))
    rng = np.random.default_rng(0); out = []
    for l in lines:
        p, lab = l.split()
        img = torch.from_numpy(np.asarray(Image.open(f'{root}/{p}'))).float()[None, None]
        img = (img / 255 - 0.5) / 0.25
        rois = []
        J, H = cfg.get('jitter', 32), cfg.get('box', 96) / 2
        for b in inst[p]['boxes']:
            cx, cy = (b[0] + b[2]) / 2 + rng.uniform(-J, J), (b[1] + b[3]) / 2 + rng.uniform(-J, J)
            rois.append([0, cx - H, cy - H, cx + H, cy + H])
        c = roi_align(img, torch.tensor(rois, dtype=torch.float32), cfg.get('crop', 32), 1.0, 0, True)
        out.append((c.expand(-1, 3, -1, -1).contiguous(), int(lab), [d == 9 for d in inst[p]['digits']]))
    return out
tr = bags('train', 2000); te = bags('test', 400)
print('loaded', flush=True)
net = MODELS.build(dict(type=cfg.get('arch', 'ResNet'), depth=18, base_channels=16, out_indices=(3,)))
fc = torch.nn.Linear(128, 2)
opt = torch.optim.AdamW(list(net.parameters()) + list(fc.parameters()), lr=cfg.get('lr', 1e-3))
t0 = time.time(); B = cfg.get('B', 32)
for step in range(2000):
    idx = np.random.randint(0, len(tr), B)
    crops = torch.cat([tr[i][0] for i in idx]); sizes = [len(tr[i][0]) for i in idx]
    logp = fc(net(crops)[-1].mean((2, 3))).log_softmax(-1)
    loss = 0
    for lp, i in zip(logp.split(sizes), idx):
        if cfg.get('supervised'): loss = loss - lp.gather(1, torch.tensor(tr[i][2]).long()[:, None]).mean()
        elif tr[i][1] == 0: loss = loss - lp[:, 0].mean()
        else: loss = loss - (lp[:, 1].max() if cfg.get('mode', 'max') == 'max' else lp[:, 1].logsumexp(0) - np.log(len(lp)))
    loss = loss / B
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 49:
        net.eval(); ok = 0; ok9 = []
        with torch.no_grad():
            for c, lab, is9 in te:
                p = fc(net(c)[-1].mean((2, 3))).softmax(-1)[:, 1]
                ok += int((p.max() > 0.5) == lab)
        net.train()
        print(f'step {step} t {time.time()-t0:.0f} loss {loss.item():.3f} bag acc {ok/len(te):.3f}', flush=True)
        if time.time() - t0 > cfg.get('budget', 400): break
