# gattn for DigitBags, trained from scratch on a CPU (why each part: model_zoo.md).
# Glance: the 512 px canvas averaged to 64 px, a 1/4-width ResNet-18 with strides
# (1, 1, 1) -> 16x16 cells of 32 px. Instances: 56 px boxes read at 32 px by a
# 1/4-width ResNet-18; the reader learns by multiple-instance learning and predicts.
model = dict(
    type='GatedAttentionClassifier',
    global_size=64,
    global_resize='area',
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=3,
                  strides=(1, 1, 1), dilations=(1, 1, 1), out_indices=(2,)),
    # PyTorch's default initialisation (mmpretrain's stalls the MIL reader)
    reader=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,),
                zero_init_residual=False, init_cfg=[]),
    neck=dict(type='GatedAttentionNeck', in_channels=64, hidden_channels=128),
    sampler=dict(type='InstanceSampler', num_instances=12, crop_size=32, box_size=56,
                 selector=dict(type='TopKSelector', min_distance=2, centre='centroid'),
                 test_cfg=dict(num_instances=24,
                               views=[(4 / 56, 0), (-4 / 56, 0), (0, 4 / 56), (0, -4 / 56)])),
    head=dict(type='FusionHead', num_classes=2, in_channels=64, instance_channels=128,
              fusion=dict(type='AttentionFusion'), detach_instances=True, init_cfg=None),
    instance_head=dict(type='InstanceHead', num_classes=2, in_channels=128, pool='max',
                       negative_class=0, mil_loss=dict(type='MILLoss', topk=1),
                       init_cfg=None),
    predict_from='instance_head',
    attention_losses=[
        dict(type='ContrastPriorLoss', loss_weight=1.0, temperature=0.5),
        dict(type='EvidenceDistillLoss', loss_weight=1.0, temperature=0.5,
             with_contrast=True),
    ],
)
