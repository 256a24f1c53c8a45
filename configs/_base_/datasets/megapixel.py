# Megapixel digits (tools/dataset_converters/make_digitbags.py --preset megapixel):
# 1500 px images, 5 digits among 50 scribbles; label: the majority digit (10
# classes) or, with --task max, the largest digit. The digits' boxes travel in the
# metainfo for the InstanceLocalization metric.
_base_ = ['digitbags.py']
data_root = 'data/megapixel'
canvas = 1500  # the images' own size: no resize

data_preprocessor = dict(num_classes=10)
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs', meta_keys={{_base_.meta_keys}}),
]
test_pipeline = train_pipeline
train_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root,
                                                   pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root,
                                                 pipeline=test_pipeline))
test_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root,
                                                  pipeline=test_pipeline))
