_base_ = ['../../../configs/gattn_digitbags.py']
# the rule this experiment tried, now MILLoss(positive='noisy_or') in the package
# (the run in train.log used a scratch copy of the same formula, NoisyOrMILLoss)
model = dict(instance_head=dict(mil_loss=dict(type='MILLoss', positive='noisy_or')))
_root = 'data/robustness/digits6to10_data_seed2'
train_dataloader = dict(dataset=dict(data_root=_root))
val_dataloader = dict(dataset=dict(data_root=_root))
test_dataloader = dict(dataset=dict(data_root=_root))
train_cfg = dict(max_epochs=12, val_interval=4)
randomness = dict(seed=0)
