import json, sys, time, torch, numpy as np, gattn_mm
from PIL import Image
from mmpretrain.registry import MODELS
torch.manual_seed(0); torch.set_num_threads(2)
root = sys.argv[2] if len(sys.argv) > 2 else 'data/digitbags'
lines = open(f'{root}/train.txt').read().split('\n')[:200]
inst = json.load(open(f'{root}/train_instances.json'))
X = torch.from_numpy(np.stack([np.asarray(Image.open(f'{root}/{l.split()[0]}')) for l in lines]))
X = ((X.float() / 255 - 0.5) / 0.25)[:, None].expand(-1, 3, -1, -1)
# digit cell mask (B, 64): cell containing the digit centre
mask = torch.zeros(len(lines), 64)
for i, l in enumerate(lines):
    for b in inst[l.split()[0]]['boxes']:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        mask[i, int(cy // 64) * 8 + int(cx // 64)] = 1
from gattn_mm.models import InstanceSampler, Selection
s = InstanceSampler(num_instances=64, crop_size=32, box_size=96); s.eval()
idx = torch.arange(64).expand(len(lines), 64)
centres = torch.stack([(idx // 8).float() + 0.5, (idx % 8).float() + 0.5], -1)
boxes = s.boxes(Selection(centres, idx.float(), idx.float()), (8, 8), (512, 512))
reader = MODELS.build(dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,))); reader.init_weights(); reader.eval()
with torch.no_grad():
    feats = torch.cat([reader(s.crop(X[i:i+20], boxes[i:i+20]))[-1].mean((2, 3)).view(-1, 64, 128) for i in range(0, len(X), 20)])
rar = (feats - feats.mean(1, keepdim=True)).norm(dim=-1)
def auc(score):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(mask.flatten().numpy(), score.flatten().numpy())
print('rarity AUC digit-vs-bg (random reader, eval BN):', auc(rar))
# crop pixel std
crops = torch.cat([s.crop(X[i:i+20], boxes[i:i+20]) for i in range(0, len(X), 20)]).view(len(X), 64, -1)
print('crop std AUC:', auc(crops.std(-1)))
# global view: can the glance backbone+neck learn to point at digit cells supervised?
g = torch.nn.functional.adaptive_avg_pool2d(X, 64)
net = MODELS.build(dict(type='ResNet', depth=18, base_channels=16, strides=(1,2,1,1), out_indices=(3,)))
neck = MODELS.build(dict(type='GatedAttentionNeck', in_channels=128))
opt = torch.optim.AdamW(list(net.parameters()) + list(neck.parameters()), 1e-3)
target = mask / mask.sum(1, keepdim=True)
t0 = time.time()
for step in range(150):
    i = torch.randint(0, 150, (16,))
    a, _ = neck(net(g[i]))
    loss = -(target[i] * a.flatten(1).clamp_min(1e-9).log()).sum(1).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 30 == 29:
        net.eval()
        with torch.no_grad(): a, _ = neck(net(g[150:]))
        net.train()
        top = a.flatten(1).topk(12, 1).indices
        print(step, f'{time.time()-t0:.0f}s', 'loss', round(loss.item(), 3), 'AUC', round(auc_ := __import__("sklearn.metrics", fromlist=["x"]).roc_auc_score(mask[150:].flatten().numpy(), a.flatten(1).numpy().flatten()), 3), 'top12 recall', (mask[150:].gather(1, top).sum() / mask[150:].sum()).item(), flush=True)
