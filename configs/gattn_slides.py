# gattn on whole-slide images (a folder of slides with a CSV of labels, CLAM's layout):
#   data/slides/labels.csv  (slide_id,label,split)   data/slides/slides/<slide_id>.svs
#   python tools/train.py configs/gattn_slides.py
# The glance is the slide's pyramid level nearest 448 px; the instances are boxes of
# 1.5 cells, read at 224 px from the coarsest level that holds that resolution.
# Set num_classes to the number of labels in the CSV.
_base_ = [
    '_base_/models/gattn_resnet50.py', '_base_/datasets/slides.py',
    '_base_/schedules/microscopy_sgd.py', '_base_/default_runtime.py'
]
num_classes = 2
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    global_size=448,
    sampler=dict(num_instances=8, test_cfg=dict(num_instances=8)),
    head=dict(num_classes=num_classes),
    instance_head=dict(num_classes=num_classes))
