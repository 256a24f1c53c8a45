# DigitBags (tools/dataset_converters/make_digitbags.py): 512 px canvases, label 1
# iff a 9 is present. Boxes of the digits travel in the metainfo for the
# InstanceLocalization metric.
dataset_type = 'DigitBags'
data_root = 'data/digitbags'
canvas = 512

data_preprocessor = dict(type='CanvasDataPreprocessor', num_classes=2, mean=[127.5] * 3,
                         std=[63.75] * 3, to_rgb=True)
meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'gt_bboxes', 'gt_digits', 'target_digit')

# No flips or rotations: digits have an orientation (a rotated 9 is a 6).
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs', meta_keys=meta_keys),
]

train_dataloader = dict(
    batch_size=32, num_workers=2,
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=50, num_workers=2,
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=50, num_workers=2,
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = [dict(type='Accuracy', topk=(1,))]
test_evaluator = val_evaluator
