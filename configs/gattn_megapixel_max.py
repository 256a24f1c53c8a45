# gattn on Megapixel digits, max task (IPS, Bergner et al. 2023: the label is the
# largest digit present); the Megapixel recipe unchanged:
#   python tools/dataset_converters/make_digitbags.py --preset megapixel --task max \
#       --out data/megapixel_max
#   python tools/train.py configs/gattn_megapixel_max.py
_base_ = ['gattn_megapixel.py']
data_root = 'data/megapixel_max'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
