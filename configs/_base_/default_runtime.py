# Runtime shared by every gattn-mm config (mmpretrain's default_runtime + the plugin).
# gattn-mm's checkpoint runtime is switched on by name here: GattnCheckpointHook saves
# atomically and deletes old checkpoints after the new one is written, and
# SafeCheckpointHook keeps checkpoints loadable with torch.load(weights_only=True).
# The tools also load every checkpoint inside gattn_mm.runtime.safe_checkpoints().
custom_imports = dict(imports=['gattn_mm'], allow_failed_imports=False)
default_scope = 'mmpretrain'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='GattnCheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)
# Runner checkpoints stay loadable with torch.load(weights_only=True).
custom_hooks = [dict(type='SafeCheckpointHook')]

env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
