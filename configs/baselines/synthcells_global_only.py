# Baseline: a plain mmpretrain ImageClassifier that sees only the glance of
# SynthCells (each image fitted into 160 px and padded, as gattn_fungi_cpu.py's
# glance), with the same backbone as gattn's glance.
_base_ = ['../_base_/datasets/fungi.py', '../_base_/schedules/digitbags_adamw.py',
          '../_base_/default_runtime.py']
global_size = 160
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='RandomFlipRotate90'),
    dict(type='StainJitter'),
    dict(type='ResizeToCanvas', scale=global_size),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=global_size),
    dict(type='PackInputs'),
]
_loader = dict(batch_size=8, num_workers=2, collate_fn=dict(type='default_collate'))
train_dataloader = dict(**_loader, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(**_loader, dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(**_loader, dataset=dict(pipeline=test_pipeline))
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True, num_classes=4),
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=3,
                  strides=(1, 1, 1), dilations=(1, 1, 1), out_indices=(2,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=4, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))
train_cfg = dict(max_epochs=12, val_interval=3)
