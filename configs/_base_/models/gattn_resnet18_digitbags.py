# gattn for DigitBags, trained from scratch on a CPU.
# Glance: the 512 px canvas averaged down to 64 px (a digit is 3 px: unreadable),
#   ResNet-18 layout at 1/4 width (base_channels=16) with strides (1, 2, 1, 1), so the
#   64 px view gives an 8x8 map: 64 cells of 64 canvas px each.
# Instances: 96 px boxes (a cell plus a digit's margin) cut from the 512 px canvas,
#   resized to 32 px, read by a standard-stride ResNet-18 at 1/4 width.
# Training: 8 cells drawn from the attention (Gumbel-top-k); test: the top 16 cells.
# What makes it learn (see model_zoo.md): the attention is distilled from the crops
#   (contrast of the full-res crop + the reader's evidence), and the reader learns by
#   multiple-instance learning with every crop of a negative bag as a clean negative.
model = dict(
    type='GatedAttentionClassifier',
    global_size=64,
    global_resize='area',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=3,
                  strides=(1, 1, 1), dilations=(1, 1, 1), out_indices=(2,)),
    local_backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,)),
    neck=dict(type='GatedAttentionNeck', in_channels=64, hidden_channels=128),
    sampler=dict(type='InstanceSampler', num_instances=12, test_num_instances=24,
                 crop_size=32, box_size=56, train_strategy='topk', test_strategy='topk',
                 min_distance=2, centre='centroid'),
    head=dict(type='FusionHead', num_classes=2, in_channels=64, local_channels=128,
              fusion='attention', local_loss_weight=1.0, local_pool='max',
              instance_loss_weight=1.0, negative_class=0, instance_topk=1,
              predict_from='local', detach_local=True,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)),
    train_cfg=dict(prior_weight=1.0, distill_weight=1.0, distill_target='both', distill_temperature=0.5),
)
