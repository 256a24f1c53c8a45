# gattn on microscopic fungi (species folders). The config users run first:
#   python tools/train.py configs/gattn_fungi.py
# Put the data in data/fungi/{train,val,test}/<species>/ or set
#   --cfg-options train_dataloader.dataset.data_root=/path/to/fungi \
#                 val_dataloader.dataset.data_root=/path/to/fungi \
#                 test_dataloader.dataset.data_root=/path/to/fungi
_base_ = [
    '_base_/models/gattn_resnet50.py', '_base_/datasets/fungi.py',
    '_base_/schedules/microscopy_sgd.py', '_base_/default_runtime.py'
]
num_classes = 5  # DeFungi: 5 species; set to your number of species
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    # instances of 448 native pixels, read at 224 px: set the box to the size of
    # your structures at your magnification (native pixels)
    sampler=dict(box_size=448, box_scale=None),
    head=dict(num_classes=num_classes),
    instance_head=dict(num_classes=num_classes))
