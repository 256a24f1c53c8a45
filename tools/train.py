"""Train a model (mmpretrain's tools/train.py, with gattn-mm's safe checkpoints and
gloo distributed training on machines without a GPU)."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os

from mmengine.config import Config, DictAction
from mmengine.device import get_device

import gattn_mm  # noqa: F401  (registers modules)
from gattn_mm.utils.cpu_distributed import cpu_distributed
from gattn_mm.apis.cli import (check_class_count, check_model_budget, check_resumable,
                               checkpoint_errors_exit)
from gattn_mm.apis.outputs import exclusive_work_dir
from gattn_mm.utils import (build_runner, ensure_plugin_import, ensure_progress_bar,
                            ensure_safe_checkpoints, set_dataloader_defaults,
                            set_default_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work directory')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual / base batch size')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='disable pin_memory in the dataloaders')
    parser.add_argument('--no-persistent-workers', action='store_true',
                        help='disable persistent_workers in the dataloaders')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs merged into it, '
        'e.g. train_cfg.max_epochs=2 model.backbone.init_cfg=None')
    parser.add_argument('--show-config', action='store_true',
                        help='print the environment, the full config and the hooks\' order '
                        'at the start, as mmengine does (the log file under the work dir '
                        'always holds them)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Merge command-line arguments into the config."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.no_validate:  # after --cfg-options, which may name val_dataloader keys
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    set_default_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_resumable(args.resume)
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    set_dataloader_defaults(cfg, args.no_pin_memory, args.no_persistent_workers)
    ensure_plugin_import(cfg)
    ensure_progress_bar(cfg)  # on a terminal only
    ensure_safe_checkpoints(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if args.amp and get_device() in ('cpu', 'mps'):
        # mmengine's AmpOptimWrapper asserts CUDA/NPU/MLU/MUSA; say so before building
        raise SystemExit(f'--amp needs a GPU (CUDA, NPU, MLU or MUSA); this machine '
                         f'has {get_device()} only: train without --amp')
    cfg = merge_args(Config.fromfile(args.config), args)
    # gloo without a GPU, ended with the run; one run per work dir
    with cpu_distributed(cfg, args.launcher), exclusive_work_dir(cfg.work_dir):
        runner = build_runner(cfg, args.show_config)  # the console without the dumps
        check_model_budget(runner.model)  # before any data is read
        check_class_count(runner.model, runner.train_loop.dataloader.dataset, args.config)
        with checkpoint_errors_exit(cfg.load_from):
            runner.train()


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
