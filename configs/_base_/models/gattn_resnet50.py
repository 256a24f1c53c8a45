# The paper's model: ResNet-50 on a 224 px glance (7x7 cells), gated attention, 4
# instances sampled from the attention in training (its key regions at test time),
# cut from the full-resolution canvas and read by the same ResNet-50; global and
# instance features concatenated, auxiliary global and instance losses.
# ImageNet weights through init_cfg; offline: --cfg-options model.backbone.init_cfg=None
pretrained = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
              'resnet50_8xb32_in1k_20210831-ea4938fc.pth')
model = dict(
    type='GatedAttentionClassifier',
    global_size=224,
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3,), style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                prefix='backbone')),
    neck=dict(type='GatedAttentionNeck', in_channels=2048, hidden_channels=128),
    sampler=dict(type='InstanceSampler', num_instances=4, crop_size=224, box_scale=1.5,
                 selector=dict(type='SampleSelector'),
                 test_cfg=dict(selector=dict(type='ThresholdSelector', threshold=0.5))),
    head=dict(type='FusionHead', num_classes=2, in_channels=2048,
              fusion=dict(type='ConcatFusion', num_instances=4)),
    global_head=dict(type='LinearClsHead', num_classes=2, in_channels=2048,
                     loss=dict(type='CrossEntropyLoss', loss_weight=0.3)),
    instance_head=dict(type='InstanceHead', num_classes=2, in_channels=2048,
                       pool='attention', negative_class=None,
                       loss=dict(type='CrossEntropyLoss', loss_weight=0.3)),
    predict_from='head',
)
