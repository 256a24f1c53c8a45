# gattn for Megapixel digits, trained from scratch on a CPU: the recipe
# (gattn_recipe.py) with its sizes. Glance: the 1500 px image averaged to 188 px
# (28 px digits become 3.5 px blobs, scribbles faint lines), a 1/4-width ResNet-18
# with strides (1, 1, 1) -> 47x47 cells of 32 px. Instances: 56 px boxes read at
# 32 px by a 1/4-width ResNet-18; 8 in training, 5 (the digits of an image) at test.
_base_ = ['gattn_recipe.py']
model = dict(
    global_size=188,
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=3,
                  strides=(1, 1, 1), dilations=(1, 1, 1), out_indices=(2,)),
    # PyTorch's default initialisation (mmpretrain's stalls the MIL reader)
    reader=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3,),
                zero_init_residual=False, init_cfg=[]),
    sampler=dict(num_instances=8, crop_size=32, box_size=56,
                 test_cfg=dict(num_instances=5)),
    head=dict(num_classes=10),
    instance_head=dict(num_classes=10),
)
