# Baseline: a plain mmpretrain ImageClassifier that sees only the global view of
# DigitBags (the 512 px canvas averaged down to 64 px, as gattn's glance), with the
# same backbone as gattn's glance.
_base_ = ['../_base_/datasets/digitbags.py', '../_base_/schedules/digitbags_adamw.py',
          '../_base_/default_runtime.py']
global_size = 64
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale={{_base_.canvas}}),
    dict(type='ResizeToCanvas', scale=global_size),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale={{_base_.canvas}}),
    dict(type='ResizeToCanvas', scale=global_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=18, base_channels=16, strides=(1, 2, 1, 1),
                  out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))
