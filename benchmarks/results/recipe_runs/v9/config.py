auto_scale_lr = dict(base_batch_size=32)
canvas = 512
custom_hooks = [
    dict(type='SafeCheckpointHook'),
    dict(
        momentum=0.01,
        priority='ABOVE_NORMAL',
        type='EMAHook',
        update_buffers=True),
]
custom_imports = dict(
    allow_failed_imports=False, imports=[
        'gattn_mm',
    ])
data_preprocessor = dict(
    mean=[
        127.5,
        127.5,
        127.5,
    ],
    num_classes=2,
    std=[
        63.75,
        63.75,
        63.75,
    ],
    to_rgb=True)
data_root = 'data/digitbags'
dataset_type = 'DigitBags'
default_hooks = dict(
    checkpoint=dict(
        interval=1, max_keep_ckpts=2, save_best='auto', type='CheckpointHook'),
    logger=dict(interval=20, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'),
    visualization=dict(enable=False, type='VisualizationHook'))
default_scope = 'mmpretrain'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
launcher = 'none'
load_from = None
log_level = 'INFO'
meta_keys = (
    'sample_idx',
    'img_path',
    'ori_shape',
    'img_shape',
    'scale_factor',
    'gt_bboxes',
    'gt_digits',
    'target_digit',
)
model = dict(
    backbone=dict(
        base_channels=16,
        depth=18,
        dilations=(
            1,
            1,
            1,
        ),
        num_stages=3,
        out_indices=(2, ),
        strides=(
            1,
            1,
            1,
        ),
        type='ResNet'),
    data_preprocessor=dict(
        mean=[
            127.5,
            127.5,
            127.5,
        ],
        num_classes=2,
        std=[
            63.75,
            63.75,
            63.75,
        ],
        to_rgb=True),
    global_resize='area',
    global_size=64,
    head=dict(
        detach_local=True,
        fusion='attention',
        in_channels=64,
        init_cfg=None,
        instance_loss_weight=1.0,
        instance_topk=1,
        local_channels=128,
        local_loss_weight=0.0,
        local_pool='max',
        loss=dict(loss_weight=1.0, type='CrossEntropyLoss'),
        negative_class=0,
        num_classes=2,
        predict_from='local',
        topk=(1, ),
        type='FusionHead'),
    local_backbone=dict(
        base_channels=16,
        depth=18,
        init_cfg=[],
        out_indices=(3, ),
        type='ResNet',
        zero_init_residual=False),
    neck=dict(hidden_channels=128, in_channels=64, type='GatedAttentionNeck'),
    sampler=dict(
        box_size=56,
        centre='centroid',
        crop_size=32,
        min_distance=2,
        num_instances=12,
        test_num_instances=24,
        test_strategy='topk',
        train_strategy='topk',
        type='InstanceSampler'),
    train_cfg=dict(
        distill_target='both',
        distill_temperature=0.5,
        distill_weight=1.0,
        prior_weight=1.0),
    type='GatedAttentionClassifier')
optim_wrapper = dict(
    optimizer=dict(lr=0.001, type='AdamW', weight_decay=0.0001))
param_scheduler = [
    dict(
        begin=0,
        by_epoch=True,
        convert_to_iter_based=True,
        end=1,
        start_factor=0.1,
        type='LinearLR'),
    dict(begin=0, by_epoch=True, eta_min=1e-05, type='CosineAnnealingLR'),
]
randomness = dict(deterministic=False, seed=0)
resume = False
test_cfg = dict()
test_dataloader = dict(
    batch_size=50,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        data_root='data/digitbags',
        pipeline=[
            dict(type='LoadMicroscopyImage'),
            dict(scale=512, type='ResizeToCanvas'),
            dict(
                meta_keys=(
                    'sample_idx',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                    'gt_bboxes',
                    'gt_digits',
                    'target_digit',
                ),
                type='PackInputs'),
        ],
        split='test',
        type='DigitBags'),
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = [
    dict(topk=(1, ), type='Accuracy'),
    dict(type='InstanceLocalization'),
]
test_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(scale=512, type='ResizeToCanvas'),
    dict(
        meta_keys=(
            'sample_idx',
            'img_path',
            'ori_shape',
            'img_shape',
            'scale_factor',
            'gt_bboxes',
            'gt_digits',
            'target_digit',
        ),
        type='PackInputs'),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=4)
train_dataloader = dict(
    batch_size=32,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        data_root='data/digitbags',
        pipeline=[
            dict(type='LoadMicroscopyImage'),
            dict(scale=512, type='ResizeToCanvas'),
            dict(
                meta_keys=(
                    'sample_idx',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                    'gt_bboxes',
                    'gt_digits',
                    'target_digit',
                ),
                type='PackInputs'),
        ],
        split='train',
        type='DigitBags'),
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(shuffle=True, type='DefaultSampler'))
train_pipeline = [
    dict(type='LoadMicroscopyImage'),
    dict(scale=512, type='ResizeToCanvas'),
    dict(
        meta_keys=(
            'sample_idx',
            'img_path',
            'ori_shape',
            'img_shape',
            'scale_factor',
            'gt_bboxes',
            'gt_digits',
            'target_digit',
        ),
        type='PackInputs'),
]
val_cfg = dict()
val_dataloader = dict(
    batch_size=50,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        data_root='data/digitbags',
        pipeline=[
            dict(type='LoadMicroscopyImage'),
            dict(scale=512, type='ResizeToCanvas'),
            dict(
                meta_keys=(
                    'sample_idx',
                    'img_path',
                    'ori_shape',
                    'img_shape',
                    'scale_factor',
                    'gt_bboxes',
                    'gt_digits',
                    'target_digit',
                ),
                type='PackInputs'),
        ],
        split='val',
        type='DigitBags'),
    num_workers=2,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(shuffle=False, type='DefaultSampler'))
val_evaluator = [
    dict(topk=(1, ), type='Accuracy'),
    dict(type='InstanceLocalization'),
]
vis_backends = [
    dict(type='LocalVisBackend'),
]
visualizer = dict(
    type='UniversalVisualizer', vis_backends=[
        dict(type='LocalVisBackend'),
    ])
work_dir = 'work_dirs/bench_ema_seed0/gattn'
