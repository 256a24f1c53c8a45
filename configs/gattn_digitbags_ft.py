# Second stage for gattn on DigitBags (why: model_zoo.md): the published 20-epoch
# model with its glance frozen and its reader trained 8 more epochs at lr 2e-4.
#   python tools/train.py configs/gattn_digitbags_ft.py
# load_from is the committed first-stage checkpoint; from an installed package use
#   --cfg-options load_from=https://github.com/gattn-mm/gattn-mm/releases/download/v0.2.0/gattn_r18_digitbags_20261128-e4d68300.pth
_base_ = ['gattn_digitbags.py']
load_from = 'checkpoints/gattn_r18_digitbags_20261128-e4d68300.pth'
model = dict(
    # the glance: every stage frozen (weights and BatchNorm statistics) ...
    backbone=dict(frozen_stages=3),
    # ... and its losses off (they would only train the glance)
    attention_losses=[])
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    # the attention layers get lr_mult=0 (the cosine's floor, eta_min below, still
    # lets them drift by ~1e-4; model_zoo.md)
    paramwise_cfg=dict(custom_keys={'reader': dict(lr_mult=1.),
                                    'neck': dict(lr_mult=0., decay_mult=0.)}))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-6)]
train_cfg = dict(max_epochs=8, val_interval=2)
