_base_ = ['../../../configs/gattn_digitbags.py']
custom_imports = dict(imports=['gattn_mm', 'noisy_or_mil'], allow_failed_imports=False)
model = dict(instance_head=dict(mil_loss=dict(type='NoisyOrMILLoss', topk=1)))
_root = 'data/robustness/digits6to10_data_seed2'
train_dataloader = dict(dataset=dict(data_root=_root))
val_dataloader = dict(dataset=dict(data_root=_root))
test_dataloader = dict(dataset=dict(data_root=_root))
train_cfg = dict(max_epochs=12, val_interval=4)
randomness = dict(seed=0)
