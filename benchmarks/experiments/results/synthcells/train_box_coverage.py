# usage: train_box_coverage.py DATA_ROOT CKPT|none EXPLORE_PRIOR [eval]
# share of the marker cells of 64 training images whose centre lies 12 px inside one of
# the boxes the model chooses (training mode unless "eval")
import json, sys, torch, warnings, numpy as np
warnings.filterwarnings('ignore')
import gattn_mm
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS, DATASETS
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
torch.set_num_threads(2); torch.manual_seed(0)
root, ckpt, explore = sys.argv[1], sys.argv[2], float(sys.argv[3])
cfg = Config.fromfile('configs/gattn_fungi_cpu.py'); init_default_scope('mmpretrain')
inst = json.load(open(f'{root}/train_instances.json'))
K = len(set(k.split('/')[1] for k in inst))
cfg.model.head.num_classes = cfg.model.instance_head.num_classes = K
cfg.model.sampler.explore_prior = explore
model = MODELS.build(cfg.model)
if ckpt != 'none': load_checkpoint(model, ckpt, map_location='cpu')
model.train() if len(sys.argv) < 5 else model.eval()
ds_cfg = cfg.test_dataloader.dataset; ds_cfg.data_root = root; ds_cfg.split = 'train'
ds = DATASETS.build(ds_cfg)
idx = np.random.RandomState(0).choice(len(ds), 64, replace=False)
covs, nmark = [], []
with torch.no_grad():
    for b in range(0, 64, 8):
        items = [ds[int(i)] for i in idx[b:b+8]]
        data = model.data_preprocessor(pseudo_collate(items), True)
        state = model.forward_state(data['inputs'], data['data_samples'])
        for s, boxes in zip(data['data_samples'], state.boxes):
            rel = s.img_path.split(root.rstrip('/') + '/')[1]
            rec = inst[rel]; tb = np.array(rec['boxes']); m = np.array([k != 'round' for k in rec['kinds']])
            cen = np.stack([(tb[:,0]+tb[:,2])/2, (tb[:,1]+tb[:,3])/2], 1)
            bx = boxes.numpy(); cov = np.zeros(len(tb), bool)
            for x0, y0, x1, y1 in bx:
                cov |= (cen[:,0] > x0+12) & (cen[:,0] < x1-12) & (cen[:,1] > y0+12) & (cen[:,1] < y1-12)
            if m.any(): covs.append(cov[m].mean()); nmark.append(cov[m].sum())
print(root, ckpt, 'explore', explore, 'marker coverage', round(float(np.mean(covs)), 3), 'markers per bag', round(float(np.mean(nmark)), 2))
