# usage: prior_bags_mil.py BOX CROP N cell|centroid|peak STEPS [attention|mean|topK|attn_mil|mil|inst|inst_attn]
# presence tasks (class 0 'absent'): attn_mil adds the recipe's MILLoss(noisy_or, bag)
# on the instances to attention-MIL, as gattn_fungi_cpu.py does; mil is that loss alone;
# inst trains every instance with its image's class (inst_attn: + attention-MIL)
# NORM=instance: each crop standardised per channel (its own mean and std), train and val
# AUG=color: each training crop's channels scaled by U(0.6, 1.4) and shifted by U(-0.5, 0.5) sd
# (the rule that trains the reader: attention-MIL, the default, or the vote of all)
# STEM=cifar: the reader's stem a stride-1 3x3 conv without max pooling (mmpretrain's ResNet_CIFAR)
# AUG=1: each training instance turned by a random one of the 8 rotations/flips of the square
import json, cv2, numpy as np, torch, torch.nn as nn, time, sys, warnings, random, os
warnings.filterwarnings('ignore')
torch.set_num_threads(1); torch.manual_seed(int(os.environ.get('SEED', 0))); random.seed(0); np.random.seed(0)  # SEED: the model's and the batches' seed
from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
from gattn_mm.models.losses import MILLoss
import os; root = os.environ.get('SYNTHCELLS', '/work/main/data/synthcells')
inst = json.load(open(f'{root}/train_instances.json'))
box, crop, N, centre = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
STEPS = int(sys.argv[5]); RULE = sys.argv[6] if len(sys.argv) > 6 else 'attention'
classes = sorted(os.listdir(f'{root}/train'))
items = sorted(inst.items()); random.shuffle(items)
bags, labels, covs = [], [], []
t = time.time()
for rel, rec in items[:400]:
    img = cv2.imread(f'{root}/{rel}')[..., ::-1]; H, W = img.shape[:2]
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    s = 160 / max(H, W); gh, gw = int(round(H*s/4)), int(round(W*s/4)); ch, cw = H/gh, W/gw
    std = np.zeros((gh, gw))
    for i in range(gh):
        for j in range(gw):
            std[i, j] = g[int(i*ch):int((i+1)*ch), int(j*cw):int((j+1)*cw)].std()
    order = np.argsort(-std.ravel()); chosen = []
    for o in order:
        i, j = divmod(o, gw)
        if all(max(abs(i-a), abs(j-b)) >= 2 for a, b in chosen): chosen.append((i, j))
        if len(chosen) == N: break
    cs = []
    for i, j in chosen:
        if centre == 'centroid':  # softmax-weighted centroid of std over 3x3 neighbourhood
            ii, jj = np.meshgrid(np.arange(max(i-1,0), min(i+2,gh)), np.arange(max(j-1,0), min(j+2,gw)), indexing='ij')
            w = np.exp((std[ii, jj] - std[i, j]) / 5.0); w /= w.sum()
            cy, cx = ((ii+.5)*ch*w).sum(), ((jj+.5)*cw*w).sum()
        elif centre == 'peak':  # move the box to the contrast peak within its own reach, at full resolution
            cx, cy = (j+.5)*cw, (i+.5)*ch
            x0, y0 = int(np.clip(cx - box, 0, W - 2*box)), int(np.clip(cy - box, 0, H - 2*box))
            c = np.abs(g[y0:y0+2*box, x0:x0+2*box] - np.median(g[y0:y0+2*box, x0:x0+2*box]))
            c = cv2.GaussianBlur(c, (0, 0), 0.1 * box)
            yy, xx = np.mgrid[:c.shape[0], :c.shape[1]]
            c[(np.abs(xx - (cx - x0)) > box/2) | (np.abs(yy - (cy - y0)) > box/2)] = -1
            iy, ix = np.unravel_index(np.argmax(c), c.shape)
            cx, cy = x0 + ix + .5, y0 + iy + .5
        else:
            cy, cx = (i+.5)*ch, (j+.5)*cw
        cs.append((cx, cy))
    boxes = np.array(rec['boxes']); m = np.array([k != 'round' for k in rec['kinds']])
    cen = np.stack([(boxes[:,0]+boxes[:,2])/2, (boxes[:,1]+boxes[:,3])/2], 1)
    cov = np.zeros(len(boxes), bool)
    crops = []
    for cx, cy in cs:
        x0, y0 = int(np.clip(cx-box/2, 0, W-box)), int(np.clip(cy-box/2, 0, H-box))
        cov |= (np.abs(cen[:,0]-(x0+box/2)) < box/2-12) & (np.abs(cen[:,1]-(y0+box/2)) < box/2-12)
        crops.append(cv2.resize(img[y0:y0+box, x0:x0+box], (crop, crop), interpolation=cv2.INTER_AREA))
    covs.append(cov[m].mean() if m.any() else np.nan)
    bags.append(np.stack(crops)); labels.append(classes.index(rel.split('/')[1]))
print('marker coverage (centre >=12px inside box)', round(float(np.nanmean(covs)), 3), 'prep', round(time.time()-t), flush=True)
X = (torch.tensor(np.stack(bags)).permute(0,1,4,2,3).float() - 128) / 60; Y = torch.tensor(labels)
if os.environ.get('NORM') == 'instance':
    X = (X - X.mean((3, 4), keepdim=True)) / X.std((3, 4), keepdim=True).clamp_min(1e-3)
n = 320
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.b = (ResNet_CIFAR if os.environ.get('STEM') == 'cifar' else ResNet)(depth=18, base_channels=16, out_indices=(3,), zero_init_residual=False); s.fc = nn.Linear(128, len(classes))
        s.att = nn.Sequential(nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 1))
    def forward(s, x):
        B, Nn = x.shape[:2]; f = s.b(x.flatten(0,1))[0].mean((2,3)).view(B, Nn, -1)
        return f
def topk_pool(logits, k):  # (B, N, C) -> (B, C): the mean of each class's k largest instance logits
    return logits.topk(k, dim=1).values.mean(1)
m = M(); opt = torch.optim.AdamW(m.parameters(), float(os.environ.get('LR', 1e-3)), weight_decay=1e-4)  # LR: its learning rate
t = time.time()
for step in range(STEPS):
    idx = torch.randint(0, n, (8,))
    xb = X[idx]
    if os.environ.get('AUG') == '1':  # a random rotation by k*90 degrees and flip per instance
        xb = xb.clone(); B_, N_ = xb.shape[:2]
        for b_ in range(B_):
            for n_ in range(N_):
                v = torch.rot90(xb[b_, n_], int(torch.randint(4, ())), (1, 2))
                xb[b_, n_] = v.flip(2) if torch.rand(()) < .5 else v
    if os.environ.get('AUG') == 'color':  # per-instance channel gain and offset
        g_ = torch.empty(*xb.shape[:3], 1, 1).uniform_(0.6, 1.4)
        o_ = torch.empty(*xb.shape[:3], 1, 1).uniform_(-0.5, 0.5)
        xb = xb * g_ + o_
    f = m(xb)
    if RULE == 'attention':  # attention-MIL: CE on the attention-pooled feature
        a = m.att(f).squeeze(-1).softmax(1)
        loss = nn.functional.cross_entropy(m.fc((a[..., None] * f).sum(1)), Y[idx])
    elif RULE.startswith('top'):  # top-k pooling of the instance logits per class (topK)
        loss = nn.functional.cross_entropy(topk_pool(m.fc(f), int(RULE[3:])), Y[idx])
    elif RULE == 'attn_mil':  # attention-MIL + the presence MIL loss on the same fc
        a = m.att(f).squeeze(-1).softmax(1); lg = m.fc(f)
        loss = (nn.functional.cross_entropy((a[..., None] * lg).sum(1), Y[idx])
                + MILLoss(positive='noisy_or', negative='bag')(lg, Y[idx], 0))
    elif RULE.startswith('inst'):  # every instance trained with its image's class
        lg = m.fc(f)
        loss = nn.functional.cross_entropy(lg.flatten(0, 1), Y[idx].repeat_interleave(lg.size(1)))
        if RULE == 'inst_attn':  # + attention-MIL on the same logits
            a = m.att(f).squeeze(-1).softmax(1)
            loss = loss + nn.functional.cross_entropy((a[..., None] * lg).sum(1), Y[idx])
    elif RULE == 'mean':  # the recipe's MILLoss without an absent class: -log mean_n p_n(k)
        loss = MILLoss()(m.fc(f), Y[idx])
    else:  # mil: the presence MILLoss alone
        loss = MILLoss(positive='noisy_or', negative='bag')(m.fc(f), Y[idx], 0)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 100 == 0 or step == STEPS-1:
        m.eval()
        with torch.no_grad():
            f = m(X[n:]); a = m.att(f).squeeze(-1).softmax(1)
            lg = m.fc(f)
            if RULE == 'inst':  # the most marker-like instance, split at the median
                top = lg.softmax(-1)[..., 1].max(1).values
                pred = (top > top.median()).long()
            elif RULE in ('attention', 'attn_mil', 'inst_attn'):  # the pooled logits
                pred = (a[..., None] * lg).sum(1).argmax(1)
            elif RULE.startswith('top'):
                pred = topk_pool(lg, int(RULE[3:])).argmax(1)
            elif RULE == 'mean':  # the vote
                pred = lg.softmax(-1).mean(1).argmax(1)
            else:  # noisy-OR over the instances
                pred = (1 - (1 - lg.softmax(-1)[..., 1]).prod(1)).gt(.5).long()
        m.train(); print(step, round(loss.item(), 3), 'bag val acc', round((pred == Y[n:]).float().mean().item(), 3), round(time.time()-t), flush=True)
