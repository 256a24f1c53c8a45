# gattn on BreakHis: benign vs malignant at one magnification, patient-disjoint fold 0.
#   python tools/train.py configs/gattn_breakhis.py
# Override magnification / task / fold on the three datasets, e.g.
#   --cfg-options train_dataloader.dataset.magnification=200 \
#                 val_dataloader.dataset.magnification=200 \
#                 test_dataloader.dataset.magnification=200
# For subtypes: ...dataset.task=subtype (x3), num_classes=8 for both heads (the data
# preprocessor follows them), and model.instance_head.negative_class=None.
_base_ = [
    '_base_/models/gattn_resnet50.py', '_base_/datasets/breakhis.py',
    '_base_/schedules/microscopy_sgd.py', '_base_/default_runtime.py'
]
magnification = 40
task = 'binary'
fold = 0
num_classes = 2
model = dict(data_preprocessor={{_base_.data_preprocessor}}, head=dict(num_classes=num_classes),
                      # benign (0) is "absent": every instance of a benign image is negative
             # (for task=subtype set negative_class=None)
             instance_head=dict(num_classes=num_classes, negative_class=0))
_dataset = dict(type='BreakHis', data_root={{_base_.data_root}}, magnification=magnification,
                task=task, num_folds=5, fold=fold)
train_dataloader = dict(
    batch_size=8, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # rotated images differ in shape
    dataset=dict(**_dataset, split='train', pipeline={{_base_.train_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # rotated images differ in shape
    dataset=dict(**_dataset, split='val', pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=8, num_workers=4,
    collate_fn=dict(type='pseudo_collate'),  # rotated images differ in shape
    dataset=dict(**_dataset, split='test', pipeline={{_base_.test_pipeline}}),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = [dict(type='Accuracy', topk=(1,)), dict(type='PatientAccuracy')]
test_evaluator = val_evaluator
