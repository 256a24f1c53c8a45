# MIL reader probe on the crops a trained glance picks (12 top cells per bag, fixed),
# with the instance loss alone or plus the max-pooled bag loss ("hardneg").
import sys, json, time, torch, numpy as np, gattn_mm
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS
from PIL import Image
torch.manual_seed(0); torch.set_num_threads(2)
cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
mc = Config.fromfile('configs/gattn_digitbags.py')
model = MODELS.build(mc.model)
load_checkpoint(model, cfg.get('glance', 'work_dirs/v6/epoch_4.pth'), map_location='cpu')
model.eval(); model.sampler.test_num_instances = cfg.get('N', 12)
def load(split, n):
    lines = open(f'data/digitbags/{split}.txt').read().split('\n')[:-1][:n]
    crops, labels = [], []
    for i in range(0, len(lines), 50):
        chunk = lines[i:i + 50]
        x = torch.stack([torch.from_numpy(np.asarray(Image.open('data/digitbags/' + l.split()[0]))).float() for l in chunk])
        x = ((x - 127.5) / 63.75)[:, None].expand(-1, 3, -1, -1)
        with torch.no_grad():
            att, _ = model.neck(model.backbone(model.glance(x)))
            _, boxes = model.sampler(att, (512, 512))
            c = model.sampler.crop(x, boxes)[:, :1]
        crops.append(c.view(len(chunk), -1, 1, 32, 32)); labels += [int(l.split()[1]) for l in chunk]
    return torch.cat(crops), torch.tensor(labels)
t0 = time.time()
tr, ytr = load('train', 2000); te, yte = load('test', 400)
print('loaded', tr.shape, time.time() - t0, flush=True)
net = MODELS.build(dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,)))
fc = torch.nn.Linear(128, 2)
if cfg.get('init'):
    net.init_weights(); torch.nn.init.normal_(fc.weight, std=0.01); torch.nn.init.zeros_(fc.bias)
opt = torch.optim.AdamW(list(net.parameters()) + list(fc.parameters()), lr=1e-3, weight_decay=cfg.get('wd', 0.01))
B, N = 32, tr.size(1)
for step in range(2000):
    idx = torch.randint(0, len(tr), (B,))
    x = tr[idx].flatten(0, 1).expand(-1, 3, -1, -1)
    lp = fc(net(x)[-1].mean((2, 3))).log_softmax(-1).view(B, N, 2)
    y = ytr[idx]
    neg = -lp[..., 0].mean(1); pos = -lp[..., 1].max(1).values
    loss = torch.where(y == 0, neg, pos).mean()
    if cfg.get('hardneg'):
        ev = lp[..., 1] - lp[..., 0]
        sel = lp[torch.arange(B), ev.argmax(1)]
        loss = loss + torch.nn.functional.nll_loss(sel, y)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 49:
        net.eval(); ok = 0
        with torch.no_grad():
            for i in range(0, len(te), 50):
                l = fc(net(te[i:i+50].flatten(0, 1).expand(-1, 3, -1, -1))[-1].mean((2, 3))).view(-1, N, 2)
                ok += int((((l[..., 1] - l[..., 0]).max(1).values > 0).long() == yte[i:i+50]).sum())
        net.train()
        print(f'step {step} t {time.time()-t0:.0f} loss {loss.item():.3f} bag acc {ok/len(te):.3f}', flush=True)
        if time.time() - t0 > cfg.get('budget', 300): break
