import json, cv2, numpy as np, torch, torch.nn as nn, time, sys, warnings, random
warnings.filterwarnings('ignore')
torch.set_num_threads(1); torch.manual_seed(0); random.seed(0); np.random.seed(0)
from mmpretrain.models.backbones import ResNet
root = '/work/main/data/synthcells'
inst = json.load(open(f'{root}/train_instances.json'))
box, crop, N, rule = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
SNAP = len(sys.argv) > 6 and sys.argv[6] == 'snap'  # move each box centre to its glance cell's centre
classes = ['binucleate', 'cleaved', 'lobed', 'ring']
items = list(inst.items()); random.shuffle(items)
bags, labels, kinds_all = [], [], []
for rel, rec in items[:400]:
    img = cv2.imread(f'{root}/{rel}')[..., ::-1]; H, W = img.shape[:2]
    cs = []; ks = []
    for b, k in zip(rec['boxes'], rec['kinds']):
        cx, cy = (b[0]+b[2])/2, (b[1]+b[3])/2
        if SNAP:  # the recipe's glance grid: the image fitted into 160 px, cells of 4 px
            gh, gw = int(round(H * 160 / max(H, W) / 4)), int(round(W * 160 / max(H, W) / 4))
            ch, cw = H / gh, W / gw
            cx, cy = (int(cx // cw) + .5) * cw, (int(cy // ch) + .5) * ch
        cs.append((cx, cy)); ks.append(k)
    while len(cs) < N:
        cs.append((np.random.uniform(box, W-box), np.random.uniform(box, H-box))); ks.append('none')
    cs, ks = cs[:N], ks[:N]
    crops = []
    for cx, cy in cs:
        x0, y0 = int(np.clip(cx-box/2, 0, W-box)), int(np.clip(cy-box/2, 0, H-box))
        crops.append(cv2.resize(img[y0:y0+box, x0:x0+box], (crop, crop), interpolation=cv2.INTER_AREA))
    bags.append(np.stack(crops)); labels.append(classes.index(rel.split('/')[1])); kinds_all.append(ks)
X = (torch.tensor(np.stack(bags)).permute(0,1,4,2,3).float() - 128) / 60; Y = torch.tensor(labels)
n = 320
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.b = ResNet(depth=18, base_channels=16, out_indices=(3,), zero_init_residual=False); s.fc = nn.Linear(128, 4)
        s.att = nn.Sequential(nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 1))
    def forward(s, x):
        B, Nn = x.shape[:2]; f = s.b(x.flatten(0,1))[0].mean((2,3)).view(B, Nn, -1)
        return s.fc(f), f
m = M(); opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=1e-4)
t = time.time()
STEPS = int(sys.argv[5]) if len(sys.argv) > 5 else 201
for step in range(STEPS):
    idx = torch.randint(0, n, (8,))
    logits, f = m(X[idx]); logp = logits.log_softmax(-1)
    if rule == 'mean':
        carried = logp.logsumexp(1) - np.log(N)
        loss = -carried[torch.arange(8), Y[idx]].mean()
    else:  # attention MIL (Ilse)
        a = m.att(f).squeeze(-1).softmax(1)
        bag = (a[..., None] * f).sum(1); loss = nn.functional.cross_entropy(m.fc(bag), Y[idx])
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 100 == 0:
        m.eval()
        with torch.no_grad():
            lg, f = m(X[n:]); 
            if rule == 'mean': pred = lg.log_softmax(-1).logsumexp(1).argmax(1)
            else:
                a = m.att(f).squeeze(-1).softmax(1); pred = m.fc((a[...,None]*f).sum(1)).argmax(1)
        m.train(); print(step, round(loss.item(), 3), 'bag val acc', round((pred == Y[n:]).float().mean().item(), 3), round(time.time()-t))
