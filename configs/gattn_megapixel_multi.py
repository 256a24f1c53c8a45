# gattn on Megapixel digits, multi-label task (IPS, Bergner et al. 2023: which
# digit classes are present); the Megapixel recipe with the multi-label head:
#   python tools/dataset_converters/make_digitbags.py --preset megapixel --task multi \
#       --out data/megapixel_multi
#   python tools/train.py configs/gattn_megapixel_multi.py
_base_ = ['gattn_megapixel.py']
data_root = 'data/megapixel_multi'
# multi-label: the fused head decides (the instances' vote is single-label)
model = dict(head=dict(type='MultiLabelFusionHead'), predict_from='head')
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = [
    dict(type='MultiLabelMetric', items=('precision', 'recall', 'f1-score'),
         average='macro'),
    dict(type='MultiLabelMetric', items=('f1-score',), average='micro'),
    dict(type='AveragePrecision'),
    dict(type='InstanceLocalization'),
]
test_evaluator = val_evaluator
# keep the best checkpoint by mAP (threshold-free), not by the first metric reported
default_hooks = dict(checkpoint=dict(save_best='multi-label/mAP'))
