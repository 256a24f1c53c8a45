# Whole-slide images: <data_root>/labels.csv (slide_id,label,split) and
# <data_root>/slides/<slide_id>.{tif,svs,ndpi,...}, read lazily from their pyramid
# (pyramidal TIFF with tifffile + zarr; the OpenSlide formats with openslide-python).
dataset_type = 'SlideFolder'
data_root = 'data/slides'

data_preprocessor = dict(type='NativeDataPreprocessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'slide')
pipeline = [
    dict(type='LoadMicroscopyImage', lazy_slides=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=4, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # images differ in size
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=4, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # images differ in size
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=4, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # images differ in size
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = [dict(type='Accuracy', topk=(1,))]
test_evaluator = val_evaluator
