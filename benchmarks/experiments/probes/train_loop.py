import json, sys, time, torch, numpy as np, gattn_mm
from PIL import Image
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
torch.manual_seed(0); torch.set_num_threads(2)
root = sys.argv[2] if len(sys.argv) > 2 else 'data/digitbags'
def load(split, n=None):
    lines = open(f'{root}/{split}.txt').read().split('\n')[:-1][:n]
    inst = json.load(open(f'{root}/{split}_instances.json'))
    X = torch.from_numpy(np.stack([np.asarray(Image.open(f'{root}/{l.split()[0]}')) for l in lines]))
    y = torch.tensor([int(l.split()[1]) for l in lines])
    return X, y, [inst[l.split()[0]] for l in lines]
c = dict(pool='max', fusion='attention', lw=1.0, gw=0.0, ent=0.0, N=24, Nt=12, tr='sample', lr=1e-3, width=16, distill=1.0, crop=32, lwidth=16, budget=900, B=32)
c.update(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
print(c, flush=True)
w = c['width']; C = w * 8; lw_ = c['lwidth']
sel = lambda t: dict(type='SampleSelector') if t == 'sample' else dict(type='TopKSelector')
fusions = dict(attention=dict(type='AttentionFusion'), mean=dict(type='MeanFusion'),
               concat=dict(type='ConcatFusion', num_instances=c['N']))
losses = [dict(type='EvidenceDistillLoss', loss_weight=c['distill'], temperature=c.get('dT', 1.0),
               with_contrast=c.get('dt', 'evidence') == 'both')] if c['distill'] else []
losses += [dict(type='AttentionEntropyLoss', loss_weight=c['ent'])] if c['ent'] else []
model = MODELS.build(dict(type='GatedAttentionClassifier',
  backbone=dict(type='ResNet', depth=18, base_channels=w, strides=(1,2,1,1), out_indices=(3,)),
  reader=dict(type='ResNet', depth=18, base_channels=lw_, out_indices=(3,)),
  neck=dict(type='GatedAttentionNeck', in_channels=C),
  sampler=dict(type='InstanceSampler', num_instances=c['N'], crop_size=c['crop'], box_size=96, selector=sel(c['tr']),
               test_cfg=dict(num_instances=c['Nt'], selector=sel('topk'))),
  head=dict(type='FusionHead', num_classes=2, in_channels=C, instance_channels=lw_*8, fusion=fusions[c['fusion']]),
  instance_head=dict(type='InstanceHead', num_classes=2, in_channels=lw_*8, pool=c['pool'],
                     loss=dict(type='CrossEntropyLoss', loss_weight=c['lw']) if c['lw'] else None,
                     mil_loss=dict(type='MILLoss', positive='max' if c.get('itk') else 'mean', loss_weight=c['il']) if c.get('il') else None),
  global_head=dict(type='LinearClsHead', num_classes=2, in_channels=C,
                   loss=dict(type='CrossEntropyLoss', loss_weight=c['gw'])) if c['gw'] else None,
  attention_losses=losses, global_size=64))
model.init_weights()
Xtr, ytr, _ = load('train'); Xte, yte, bte = load('test')
print('loaded', flush=True)
opt = torch.optim.AdamW(model.parameters(), lr=c['lr'], weight_decay=1e-4)
def prep(x): return ((x.float() / 255 - 0.5) / 0.25)[:, None].expand(-1, 3, -1, -1)
def evaluate():
    model.eval(); correct = 0; cl = 0; cov = []; tcov = []
    with torch.no_grad():
        for i in range(0, len(Xte), 50):
            state = model.forward_state(prep(Xte[i:i+50]))
            logits = model.head(state)
            correct += (logits.argmax(1) == yte[i:i+50]).sum().item()
            cl += (model.instance_head.pooled(state.instance_logits, state.weights).argmax(1) == yte[i:i+50]).sum().item()
            for b, bx in zip(state.boxes, bte[i:i+50]):
                for box, d in zip(bx['boxes'], bx['digits']):
                    hit = ((b[:,0] <= box[0]) & (b[:,2] >= box[2]) & (b[:,1] <= box[1]) & (b[:,3] >= box[3])).any().item()
                    cov.append(hit); (tcov.append(hit) if d == 9 else None)
    model.train()
    return correct / len(Xte), cl / len(Xte), np.mean(cov), np.mean(tcov)
t0 = time.time(); B = c['B']
for ep in range(100):
    perm = torch.randperm(len(Xtr)); tl = {}
    for i in range(0, len(Xtr) - B + 1, B):
        idx = perm[i:i+B]
        ds = [DataSample().set_gt_label(int(v)) for v in ytr[idx]]
        losses = model(prep(Xtr[idx]), ds, 'loss')
        loss = sum(losses.values()); opt.zero_grad(); loss.backward(); opt.step()
        for k, v in losses.items(): tl[k] = tl.get(k, 0) + v.item() / (len(Xtr)//B)
        if (i // B) % 50 == 0: print(i, {k: round(v.item(), 3) for k, v in losses.items()}, flush=True)
    if ep % c.get('eval_every', 1): continue
    acc, lacc, cov, tcov = evaluate()
    print(f'ep {ep} t {time.time()-t0:.0f}s ' + ' '.join(f'{k} {v:.3f}' for k, v in tl.items()) + f' acc {acc:.3f} lacc {lacc:.3f} cov {cov:.2f} tcov {tcov:.2f}', flush=True)
    if time.time() - t0 > float(c['budget']): break
