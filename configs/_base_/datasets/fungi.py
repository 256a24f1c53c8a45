# Fungi in species folders: <data_root>/{train,val,test}/<species>/*.{png,jpg,tif}
dataset_type = 'Fungi'
data_root = 'data/fungi'
canvas = 1024  # the full-resolution canvas the instances are cut from

data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='RandomFlipRotate90'),
    dict(type='StainJitter'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8, num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=8, num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = [dict(type='Accuracy', topk=(1,)),
                 dict(type='SingleLabelMetric', items=('precision', 'recall', 'f1-score'))]
test_evaluator = val_evaluator
