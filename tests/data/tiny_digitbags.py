# A fast variant of configs/gattn_digitbags.py for tests: a 128 px canvas with 12 px
# digits (tests/conftest.py makes it), a 32 px global view, 2 epochs.
_base_ = ['../../configs/gattn_digitbags.py']
canvas = 128
model = dict(
    global_size=32,
    sampler=dict(num_instances=4, box_size=24, crop_size=16,
                 test_cfg=dict(num_instances=4)))
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs', meta_keys={{_base_.meta_keys}}),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs', meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(batch_size=4, num_workers=0,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(pipeline=test_pipeline))
train_cfg = dict(max_epochs=2)
default_hooks = dict(logger=dict(interval=1))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
