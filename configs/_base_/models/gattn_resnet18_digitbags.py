# gattn for DigitBags, trained from scratch on a CPU.
# Global view: the 512 px canvas averaged down to 64 px (a digit is 3 px: unreadable).
# Backbone: ResNet-18 layout at 1/4 width (base_channels=16) with strides (1, 2, 1, 1),
# so the 64 px view gives an 8x8 map: 64 cells of 64 canvas px each.
# Instances: 96 px boxes (a cell plus a digit's margin) cut from the 512 px canvas,
# resized to 32 px, read by a second, standard-stride ResNet-18 at 1/4 width.
model = dict(
    type='GatedAttentionClassifier',
    global_size=64,
    global_resize='area',
    backbone=dict(type='ResNet', depth=18, base_channels=16, strides=(1, 2, 1, 1),
                  out_indices=(3,)),
    local_backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,)),
    neck=dict(type='GatedAttentionNeck', in_channels=128, hidden_channels=128),
    sampler=dict(type='InstanceSampler', num_instances=64, test_num_instances=12,
                 crop_size=32, box_size=96, train_strategy='topk', test_strategy='topk'),
    head=dict(type='FusionHead', num_classes=2, in_channels=128, local_channels=128,
              fusion='attention', local_loss_weight=1.0, local_pool='max',
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)),
    train_cfg=dict(distill_weight=1.0),
)
