# gattn for DigitBags, trained from scratch on a CPU.
# Glance: the 512 px canvas averaged down to 64 px (a digit is 3 px: unreadable), the
#   first three stages of a ResNet-18 layout at 1/4 width (base_channels=16) with
#   strides (1, 1, 1), so the 64 px view gives a 16x16 map: 256 cells of 32 canvas px.
# Instances: 56 px boxes (a 24 px digit plus margin) centred on the attention centroid
#   around each chosen cell, cut from the 512 px canvas, resized to 32 px and read by
#   a standard-stride ResNet-18 at 1/4 width.
# Training and test: the 12 / 24 top cells at least 2 cells apart (deterministic);
#   at test time each instance is read in 5 views (the box and 4 px shifts of it).
# What makes it learn (see model_zoo.md): the attention follows a label-free contrast
#   prior over all cells from the first step and the reader's evidence later; the
#   reader learns by multiple-instance learning (every crop of a negative bag is a
#   clean negative, the best crop of a positive bag a positive), undisturbed by the
#   fused loss (detach_local), and the bag is positive iff one of its crops is.
model = dict(
    type='GatedAttentionClassifier',
    global_size=64,
    global_resize='area',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=3,
                  strides=(1, 1, 1), dilations=(1, 1, 1), out_indices=(2,)),
    # PyTorch's default initialisation for the reader and the head: with mmpretrain's
    # (Kaiming fan-out, zero-initialised residual branches, 0.01-std classifier)
    # the MIL reader stalls for hundreds of steps (model_zoo.md).
    local_backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,),
                        zero_init_residual=False, init_cfg=[]),
    neck=dict(type='GatedAttentionNeck', in_channels=64, hidden_channels=128),
    # test_views: outside training the reader also sees every box moved by 4 canvas
    # px left, right, up and down, and averages its features over the 5 views
    sampler=dict(type='InstanceSampler', num_instances=12, test_num_instances=24,
                 crop_size=32, box_size=56, train_strategy='topk', test_strategy='topk',
                 min_distance=2, centre='centroid',
                 test_views=[(4 / 56, 0), (-4 / 56, 0), (0, 4 / 56), (0, -4 / 56)]),
    head=dict(type='FusionHead', num_classes=2, in_channels=64, local_channels=128,
              fusion='attention', local_loss_weight=0., local_pool='max',
              instance_loss_weight=1.0, negative_class=0, instance_topk=1,
              predict_from='local', detach_local=True,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,),
              init_cfg=None),
    train_cfg=dict(prior_weight=1.0, distill_weight=1.0, distill_target='both',
                   distill_temperature=0.5),
)
