# BreakHis, public layout under data/breakhis/BreaKHis_v1/...; patient-disjoint folds.
# Override with --cfg-options, e.g.
#   magnification=200 task=subtype fold=2   (see the entry config)
dataset_type = 'BreakHis'
data_root = 'data/breakhis'
canvas = 704  # BreakHis images are 700x460; padded to a 704x704 canvas

data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         to_rgb=True)
meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'patient_id', 'magnification')
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='RandomFlipRotate90'),
    dict(type='StainJitter'),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='ResizeToCanvas', scale=canvas),
    dict(type='PackInputs', meta_keys=meta_keys),
]
