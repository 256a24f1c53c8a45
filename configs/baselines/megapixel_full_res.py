# Baseline: a plain mmpretrain ImageClassifier on the whole 1500 px Megapixel image
# (full resolution), with the ResNet-18 layout of gattn's instance reader.
# tools/benchmarks/accuracy.py trains it for the wall-clock time gattn took
# (TimeBudgetHook).
_base_ = ['../_base_/datasets/megapixel.py', '../_base_/schedules/digitbags_adamw.py',
          '../_base_/default_runtime.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))
train_cfg = dict(max_epochs=6, val_interval=2)
# no time limit unless the benchmark sets gattn's training time:
#   --cfg-options custom_hooks.1.seconds=SECONDS
custom_hooks = [dict(type='SafeCheckpointHook'),
                dict(type='TimeBudgetHook', seconds=7 * 24 * 3600)]
