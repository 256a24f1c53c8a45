# gattn_fungi with a ConvNeXt-T backbone (ImageNet-1k weights from mmpretrain).
_base_ = ['gattn_fungi.py']
model = dict(
    backbone=dict(
        _delete_=True, type='ConvNeXt', arch='tiny', out_indices=(3,),
        gap_before_final_norm=False,  # the neck needs the feature map
        init_cfg=dict(type='Pretrained', prefix='backbone',
                      checkpoint='gattn-safe:https://download.openmmlab.com/mmclassification/v0/'
                      'convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth')))
