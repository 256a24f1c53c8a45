# Fungi in species folders: <data_root>/{train,val,test}/<species>/*.{png,jpg,tif}
# At native resolution: every image keeps its own size (no canvas; images of
# different sizes share a batch), the model glances at it downsampled and reads the
# instances from its own pixels; pyramidal TIFF / OpenSlide slides are read lazily.
dataset_type = 'Fungi'
data_root = 'data/fungi'

data_preprocessor = dict(type='NativeDataPreprocessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'flip', 'rot90', 'slide')
train_pipeline = [
    dict(type='LoadMicroscopyImage', lazy_slides=True),
    dict(type='RandomFlipRotate90'),
    dict(type='StainJitter'),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage', lazy_slides=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=8, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # images differ in size
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # images differ in size
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=8, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # images differ in size
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = [dict(type='Accuracy', topk=(1,)),
                 dict(type='SingleLabelMetric', items=('precision', 'recall', 'f1-score'))]
test_evaluator = val_evaluator
