# gattn with a ResNet-50 for microscopy images: the recipe (gattn_recipe.py) with
# its sizes. As in the paper, one ImageNet ResNet-50 reads the 224 px glance (7x7
# cells) and the instances (4 boxes of 1.5 cells, read at 224 px).
# ImageNet weights through init_cfg; offline: --cfg-options model.backbone.init_cfg=None
# 'gattn-safe:' (gattn_mm.runtime.loaders): the URL is read without unpickling code and
# hash-checked wherever the model is built, also outside gattn-mm's tools.
_base_ = ['gattn_recipe.py']
pretrained = ('gattn-safe:https://download.openmmlab.com/mmclassification/v0/resnet/'
              'resnet50_8xb32_in1k_20210831-ea4938fc.pth')
model = dict(
    global_size=224,
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3,), style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                prefix='backbone')),
    sampler=dict(num_instances=4, crop_size=224, box_scale=1.5,
                 test_cfg=dict(num_instances=4)),
    head=dict(num_classes=2),
    instance_head=dict(num_classes=2),
)
