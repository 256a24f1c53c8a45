# gattn on whole-slide images (a folder of slides with a CSV of labels, CLAM's layout):
#   data/slides/labels.csv  (slide_id,label,split)   data/slides/slides/<slide_id>.svs
#   python tools/train.py configs/gattn_slides.py
# The glance is the slide's pyramid level nearest 448 px. The instances are boxes of
# 224 x 224 µm (in each slide's level-0 pixels, from its microns per pixel: a slide
# without them is refused by name), read at 224 px (1 µm per crop pixel) from the
# coarsest level that holds that resolution, and only on tissue (Otsu on the
# thumbnail: brightfield slides, glass is bright). docs/slides.md says why.
# Set num_classes to the number of labels in the CSV.
_base_ = [
    '_base_/models/gattn_resnet50.py', '_base_/datasets/slides.py',
    '_base_/schedules/microscopy_sgd.py', '_base_/default_runtime.py'
]
num_classes = 2
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    global_size=448,
    sampler=dict(num_instances=8, box_scale=None, box_size_um=224., tissue_mask=True,
                 test_cfg=dict(num_instances=8)),
    head=dict(num_classes=num_classes),
    # class 0 (the first label sorted: e.g. normal before tumor) is "absent": a slide
    # is positive iff one of its instances is, every instance of a negative slide is
    # negative (MIL). For subtypes without such a class set negative_class=None
    instance_head=dict(num_classes=num_classes, negative_class=0))
