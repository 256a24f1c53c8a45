"""Test (and evaluate) a model: mmpretrain's tools/test.py with gattn-mm's safe
checkpoint loading and gloo distributed testing without a GPU."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os

import mmengine
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.evaluator import DumpResults

import gattn_mm  # noqa: F401
from gattn_mm.apis.cli import (check_class_count, check_model_budget, checkpoint_arg,
                               checkpoint_errors_exit)
from gattn_mm.apis.outputs import check_output_file, exclusive_work_dir
from gattn_mm.utils.cpu_distributed import cpu_distributed
from gattn_mm.utils import (build_runner, ensure_plugin_import, ensure_progress_bar,
                            set_dataloader_defaults, set_default_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', type=checkpoint_arg,
                        help='checkpoint file (or http(s) URL)')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='the file to write results to: predictions as '
                        'a .pkl file, metrics (--out-item metrics) as .pkl/.json/.yaml')
    parser.add_argument('--out-item', choices=['metrics', 'pred'],
                        help='write metrics or predictions to --out (default: pred)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs merged into it')
    parser.add_argument('--amp', action='store_true', help='mixed-precision test')
    parser.add_argument('--show-dir', help='directory to save visualised predictions')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--interval', type=int, default=1,
                        help='visualise every this many samples')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='display time of every window (s)')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='disable pin_memory in the dataloader')
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation with the config\'s tta_model and tta_pipeline '
        '(refused when it has none: no flip fallback)')
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
    if args.out is None and args.out_item is not None:
        parser.error('--out-item needs --out FILE')
    if args.out is not None and args.out_item != 'metrics' and \
            not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out {args.out}: predictions are written as a pickle (.pkl); '
                     f'for metrics as JSON or YAML add --out-item metrics')
    check_output_file(args.out, '--out')  # before the test, not after it
    return args


def merge_args(cfg, args):
    cfg.launcher = args.launcher
    set_default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg.fp16 = True
    if args.show or args.show_dir is not None:
        if 'visualization' not in cfg.default_hooks:
            raise KeyError('--show/--show-dir need default_hooks.visualization='
                           'dict(type="VisualizationHook") in the config')
        vis = cfg.default_hooks.visualization
        vis.update(enable=True, show=args.show, wait_time=args.wait_time,
                   out_dir=args.show_dir, interval=args.interval)
    if args.tta:
        missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
        if missing:
            raise SystemExit(
                f'error: --tta needs {" and ".join(missing)} in {args.config}. gattn-mm does '
                f'not fall back to flip TTA: a flipped digit or letter is another class. '
                f'The gattn configs already read every instance in several views at test '
                f'time (model.sampler.test_cfg.views); for another TTA define tta_model and '
                f'tta_pipeline in the config.')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_dataloader_defaults(cfg, args.no_pin_memory, no_persistent_workers=True)
    ensure_plugin_import(cfg)
    ensure_progress_bar(cfg)  # on a terminal only
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    # gloo without a GPU, ended with the run; one run per work dir
    with cpu_distributed(cfg, args.launcher), exclusive_work_dir(cfg.work_dir):
        runner = build_runner(cfg, args.show_config)  # the console without the dumps
        if args.out and args.out_item in ('pred', None):
            runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
        check_model_budget(runner.model)  # before any data is read
        check_class_count(runner.model, runner.test_loop.dataloader.dataset, args.config)
        with checkpoint_errors_exit(args.checkpoint):
            metrics = runner.test()
        if args.out and args.out_item == 'metrics':
            mmengine.dump(metrics, args.out)
    return metrics


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
