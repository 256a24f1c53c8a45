# BreakHis, public layout under data/breakhis/BreaKHis_v1/...; patient-disjoint folds.
# Override with --cfg-options, e.g.
#   magnification=200 task=subtype fold=2   (see the entry config)
dataset_type = 'BreakHis'
data_root = 'data/breakhis'
# At native resolution: each 700x460 image keeps its size (no canvas); the model
# glances at it downsampled and reads the instances from its own pixels.
data_preprocessor = dict(type='NativeDataPreprocessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'flip', 'rot90',
             'patient_id', 'magnification')
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='RandomFlipRotate90'),
    dict(type='StainJitter'),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(type='PackInputs', meta_keys=meta_keys),
]
