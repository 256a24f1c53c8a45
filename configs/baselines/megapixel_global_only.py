# Baseline: a plain mmpretrain ImageClassifier that sees only the global view of
# Megapixel digits (the 1500 px image averaged down to 188 px, as gattn's glance),
# with the same backbone as gattn's glance.
_base_ = ['../_base_/datasets/megapixel.py', '../_base_/schedules/digitbags_adamw.py',
          '../_base_/default_runtime.py']
global_size = 188
pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=global_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = dict(dataset=dict(pipeline=pipeline))
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=3,
                  strides=(1, 1, 1), dilations=(1, 1, 1), out_indices=(2,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))
train_cfg = dict(max_epochs=6, val_interval=2)
