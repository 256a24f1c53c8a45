# gattn on DigitBags: the demo and the benchmark.
#   python tools/dataset_converters/make_digitbags.py --out data/digitbags
#   python tools/train.py configs/gattn_digitbags.py
_base_ = [
    '_base_/models/gattn_resnet18_digitbags.py', '_base_/datasets/digitbags.py',
    '_base_/schedules/digitbags_adamw.py', '_base_/default_runtime.py'
]
model = dict(data_preprocessor={{_base_.data_preprocessor}})
val_evaluator = [dict(type='Accuracy', topk=(1,)), dict(type='InstanceLocalization')]
test_evaluator = val_evaluator
# the attention of 4 val bags drawn at every validation (<work_dir>/attention/, and
# TensorBoard when configured), to watch it sharpen over the epochs
custom_hooks = [dict(type='SafeCheckpointHook'),
                dict(type='AttentionVisualizationHook', num_samples=4)]
