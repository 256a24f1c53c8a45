# Baseline: a plain mmpretrain ImageClassifier on the whole 1500 px Megapixel image
# (full resolution), with the ResNet-18 layout of gattn's instance reader.
# tools/benchmarks/accuracy.py trains it for the wall-clock time gattn took
# (TimeBudgetHook). One epoch of it takes longer than all of gattn's training on
# 2 CPU cores, so gattn's 6 epochs are counted in iterations and the budget can
# stop it between two iterations.
_base_ = ['../_base_/datasets/megapixel.py', '../_base_/schedules/digitbags_adamw.py',
          '../_base_/default_runtime.py']
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))
epoch = 313  # iterations: 5,000 training images at batch 16
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6 * epoch,
                 val_interval=2 * epoch)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=epoch),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=6 * epoch,
         T_max=6 * epoch, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=epoch))
log_processor = dict(by_epoch=False)
# no time limit unless the benchmark sets gattn's training time:
#   --cfg-options custom_hooks.1.seconds=SECONDS
custom_hooks = [dict(type='SafeCheckpointHook'),
                dict(type='TimeBudgetHook', seconds=7 * 24 * 3600)]
