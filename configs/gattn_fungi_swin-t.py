# gattn_fungi with a Swin-T backbone (ImageNet-1k weights from mmpretrain).
_base_ = ['gattn_fungi.py']
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', arch='tiny', img_size=224,
        out_indices=(3,), pad_small_map=True,
        init_cfg=dict(type='Pretrained', prefix='backbone',
                      checkpoint='gattn-safe:https://download.openmmlab.com/mmclassification/v0/'
                      'swin-transformer/swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth')))
