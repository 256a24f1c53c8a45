# gattn on DigitBags at native resolution: the same model and weights as
# gattn_digitbags.py, but no canvas. Each image (or whole-slide image, read lazily
# from its pyramid) keeps its own size: the glance is the image fitted into 64 px,
# the boxes are 1.75 cells (56 px on a 512 px bag, as the canvas config) in native
# pixels, and the crops are read from the native pixels (for a slide, from the
# coarsest pyramid level that holds the crop's resolution). On 512 px bags it
# predicts exactly as gattn_digitbags.py (tests/test_native.py).
#   python tools/infer.py configs/gattn_digitbags_native.py CKPT slide.tif
_base_ = ['gattn_digitbags.py']
model = dict(
    data_preprocessor=dict(type='NativeDataPreprocessor'),
    sampler=dict(box_size=None, box_scale=1.75))
native_pipeline = [
    dict(type='LoadMicroscopyImage', lazy_slides=True),
    dict(type='PackInputs',
         meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'gt_bboxes',
                    'gt_digits', 'target_digit', 'slide')),
]
_loader = dict(collate_fn=dict(type='pseudo_collate'),  # images differ in size
               dataset=dict(pipeline=native_pipeline))
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
