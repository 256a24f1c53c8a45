# gattn on Megapixel digits, majority task (the benchmark of attention sampling):
#   python tools/dataset_converters/make_digitbags.py --preset megapixel --out data/megapixel
#   python tools/train.py configs/gattn_megapixel.py
# The max and multi-label tasks: configs/gattn_megapixel_{max,multi}.py
_base_ = [
    '_base_/models/gattn_resnet18_megapixel.py', '_base_/datasets/megapixel.py',
    '_base_/schedules/digitbags_adamw.py', '_base_/default_runtime.py'
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})
val_evaluator = [dict(type='Accuracy', topk=(1,)), dict(type='InstanceLocalization')]
test_evaluator = val_evaluator
custom_hooks = [dict(type='SafeCheckpointHook'),
                dict(type='AttentionVisualizationHook', num_samples=4)]
train_cfg = dict(max_epochs=6, val_interval=2)
