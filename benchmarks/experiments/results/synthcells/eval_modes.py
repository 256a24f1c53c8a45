# usage: eval_modes.py DATA_ROOT CKPT SPLIT train|eval|bn_train [NUM_CLASSES] [key=value ...]
# accuracy on 96 images of SPLIT with the model in training mode, eval mode, or eval
# mode with batch statistics; key=value: config options (e.g. model.sampler.test_cfg.views=[])
import json, sys, torch, warnings, numpy as np
warnings.filterwarnings('ignore')
import gattn_mm
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS, DATASETS
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
torch.set_num_threads(2); torch.manual_seed(0)
root, ckpt, split, mode = sys.argv[1:5]
cfg = Config.fromfile('configs/gattn_fungi_cpu.py'); init_default_scope('mmpretrain')
K = int(sys.argv[5]) if len(sys.argv) > 5 else 3
cfg.model.head.num_classes = cfg.model.instance_head.num_classes = K
for kv in sys.argv[6:]:
    k, v = kv.split('='); cfg.merge_from_dict({k: eval(v)})
model = MODELS.build(cfg.model); load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
model.train() if mode == 'train' else model.eval()
if mode == 'bn_train':  # eval sampler, BN batch stats
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d): m.train()
ds_cfg = cfg.test_dataloader.dataset; ds_cfg.data_root = root; ds_cfg.split = split
ds = DATASETS.build(ds_cfg)
idx = np.random.RandomState(0).choice(len(ds), 96, replace=False)
ok = []
with torch.no_grad():
    for b in range(0, 96, 8):
        items = [ds[int(i)] for i in idx[b:b+8]]
        data = model.data_preprocessor(pseudo_collate(items), False)
        logits = model(data['inputs'], data['data_samples'], mode='tensor')
        ok += (logits.argmax(1) == torch.stack([s.gt_label for s in data['data_samples']]).view(-1)).tolist()
print(split, mode, sys.argv[6:], 'acc', round(float(np.mean(ok)), 3))
