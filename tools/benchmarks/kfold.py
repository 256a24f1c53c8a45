"""K-fold cross-validation of a config whose datasets take ``fold`` and ``num_folds``
(BreakHis's patient-disjoint folds): for each fold k, tools/train.py trains the
config with

    {train,val,test}_dataloader.dataset.fold=k  {...}.dataset.num_folds=K

into WORK_DIR/fold_k, then tools/test.py tests its last (or best) checkpoint on fold
k's test split. The test metrics of every fold go into WORK_DIR/kfold.json with
their mean and sample standard deviation (n - 1) per metric, printed as mean ± sd; a
metric that is NaN in a fold (undefined there, e.g. AUC of a test split with one
class) is left out of its mean, and the folds that count are given.

    python tools/benchmarks/kfold.py configs/gattn_breakhis.py --folds 5 \\
        --work-dir work_dirs/breakhis_kfold --cfg-options train_cfg.max_epochs=20
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPLITS = ('train', 'val', 'test')
FOLD_KEYS = ('fold', 'num_folds')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file whose datasets take fold and num_folds')
    p.add_argument('--folds', type=int, required=True, metavar='K',
                   help='number of folds K (>= 3: fold k tests on fold k, validates on '
                        'fold k+1 and trains on the other K-2); every fold is run')
    p.add_argument('--work-dir', default=None,
                   help='folder of the folds\' work dirs (fold_<k>) and kfold.json; '
                        'default work_dirs/kfold_<config name>')
    p.add_argument('--checkpoint', choices=['last', 'best'], default='last',
                   help='the checkpoint of each fold to test: the last one, or the best '
                        'on the validation split (best_*.pth, the config\'s save_best)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='passed to tools/train.py and tools/test.py of every fold '
                        '(fold and num_folds of the datasets are set by this tool)')
    p.add_argument('--dry-run', action='store_true',
                   help='check the config and print the train and test commands of '
                        'every fold (the test\'s checkpoint as CHECKPOINT); run nothing, '
                        'write nothing')
    args = p.parse_args(argv)
    if args.folds < 3:
        p.error(f'--folds must be >= 3 (fold k tests on fold k, validates on fold k+1 and '
                f'trains on the other K-2), got {args.folds}')
    fold_opts = [o for o in args.cfg_options
                 if o.split('=', 1)[0].rsplit('.', 1)[-1] in FOLD_KEYS]
    if fold_opts:
        p.error(f'--cfg-options {" ".join(fold_opts)}: fold and num_folds are set by '
                f'this tool (--folds)')
    args.work_dir = args.work_dir or osp.join(
        'work_dirs', f'kfold_{osp.splitext(osp.basename(args.config))[0]}')
    return args


def fold_options(fold: int, num_folds: int) -> List[str]:
    """The ``--cfg-options`` that select fold ``fold`` of ``num_folds`` on the train,
    val and test datasets."""
    return [f'{split}_dataloader.dataset.{key}={value}' for split in SPLITS
            for key, value in (('fold', fold), ('num_folds', num_folds))]


def check_config(config: str, cfg_options: Sequence[str]) -> None:
    """Raise ``SystemExit`` unless every dataset of ``config`` (with ``cfg_options``)
    takes ``fold`` and ``num_folds``, naming the first that does not."""
    from mmengine.config import Config, DictAction
    if not osp.isfile(config):
        raise SystemExit(f'error: config {config}: no such file')
    cfg = Config.fromfile(config)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *cfg_options]).o)
    for split in SPLITS:
        loader = cfg.get(f'{split}_dataloader')
        dataset = loader.get('dataset', {}) if loader else None
        if split == 'val' and not loader:
            continue  # no validation: nothing to set
        missing = [k for k in FOLD_KEYS if k not in (dataset or {})]
        if missing:
            raise SystemExit(
                f'error: {config}: {split}_dataloader.dataset '
                f'({(dataset or {}).get("type", "missing")}) has no {" or ".join(missing)}; '
                f'k-fold needs datasets that take fold and num_folds (e.g. BreakHis)')


def run_tool(cmd: List[str], log_path: str) -> None:
    """Run ``cmd``, its output into ``log_path``; ``SystemExit`` with the log's tail
    when it fails."""
    with open(log_path, 'w') as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        with open(log_path, errors='replace') as log:
            tail = ''.join(log.readlines()[-15:])
        raise SystemExit(f'{tail}\nerror: `{" ".join(cmd)}` failed (exit {code}); its '
                         f'log: {log_path}')


def checkpoint_of(work_dir: str, which: str) -> str:
    """The ``last`` or ``best`` checkpoint tools/train.py left in ``work_dir``."""
    if which == 'best':
        best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')))
        if len(best) != 1:
            raise SystemExit(f'error: --checkpoint best: {len(best)} best_*.pth in '
                             f'{work_dir} (expected one: the config needs validation and '
                             f'default_hooks.checkpoint.save_best)')
        return best[0]
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise SystemExit(f'error: {last}: missing; tools/train.py saved no checkpoint')
    with open(last) as f:
        return f.read().strip()


def fold_commands(args: argparse.Namespace, fold: int,
                  checkpoint: str = 'CHECKPOINT') -> Dict[str, List[str]]:
    """The train and test commands of ``fold``, the test's on ``checkpoint``."""
    work = osp.join(args.work_dir, f'fold_{fold}')
    opts = [*args.cfg_options, *fold_options(fold, args.folds)]
    tool = lambda name: osp.join(ROOT, 'tools', name)  # noqa: E731
    return dict(
        train=[sys.executable, tool('train.py'), args.config, '--work-dir', work,
               '--cfg-options', *opts],
        test=[sys.executable, tool('test.py'), args.config, checkpoint, '--work-dir', work,
              '--out', osp.join(work, 'test_metrics.json'), '--out-item', 'metrics',
              '--cfg-options', *opts])


def finite_or_none(metrics: dict) -> dict:
    """``metrics`` with NaN and infinities as None (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in metrics.items()}


def run_fold(args: argparse.Namespace, fold: int) -> dict:
    """Train and test ``fold``: its checkpoint and test metrics (undefined ones None)."""
    work = osp.join(args.work_dir, f'fold_{fold}')
    os.makedirs(work, exist_ok=True)
    print(f'fold {fold} of {args.folds}: training, log {osp.join(work, "train.log")}',
          flush=True)
    run_tool(fold_commands(args, fold)['train'], osp.join(work, 'train.log'))
    checkpoint = checkpoint_of(work, args.checkpoint)
    print(f'fold {fold} of {args.folds}: testing {checkpoint}', flush=True)
    run_tool(fold_commands(args, fold, checkpoint)['test'], osp.join(work, 'test.log'))
    with open(osp.join(work, 'test_metrics.json')) as f:
        metrics = json.load(f)
    return dict(fold=fold, checkpoint=checkpoint, metrics=finite_or_none(metrics))


def summarize(per_fold: List[dict]) -> Dict[str, dict]:
    """Metric -> mean, sample sd (None for one value), the folds that count (its value
    is a finite number there) and the folds left out."""
    names = sorted({k for r in per_fold for k, v in r['metrics'].items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
    summary = {}
    for name in names:
        values = {r['fold']: r['metrics'].get(name) for r in per_fold}
        kept = {f: float(v) for f, v in values.items()
                if isinstance(v, (int, float)) and math.isfinite(v)}
        numbers = list(kept.values())
        summary[name] = dict(
            mean=statistics.mean(numbers) if numbers else None,
            sd=statistics.stdev(numbers) if len(numbers) > 1 else None,
            folds=sorted(kept), left_out=sorted(set(values) - set(kept)))
    return summary


def format_summary(summary: Dict[str, dict], num_folds: int) -> str:
    """One line per metric: ``name  mean ± sd  (n of K folds[; undefined in ...])``."""
    width = max((len(n) for n in summary), default=6)
    lines = []
    for name, s in summary.items():
        value = ('undefined in every fold' if s['mean'] is None else
                 f'{s["mean"]:.4g} ± {s["sd"]:.3g}' if s['sd'] is not None else
                 f'{s["mean"]:.4g} ± n/a')
        note = f'; left out: fold {", ".join(map(str, s["left_out"]))}' \
            if s['left_out'] else ''
        lines.append(f'{name:<{width}}  {value}  ({len(s["folds"])} of {num_folds} folds'
                     f'{note})')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    check_config(args.config, args.cfg_options)
    if args.dry_run:
        for fold in range(args.folds):
            for cmd in fold_commands(args, fold).values():
                print(' '.join(cmd))
        return 0
    per_fold = [run_fold(args, fold) for fold in range(args.folds)]
    summary = summarize(per_fold)
    out = osp.join(args.work_dir, 'kfold.json')
    with open(out, 'w') as f:
        json.dump(dict(config=args.config, folds=args.folds, checkpoint=args.checkpoint,
                       cfg_options=args.cfg_options, per_fold=per_fold, summary=summary),
                  f, indent=1)
    print(format_summary(summary, args.folds))
    print(f'per fold and summary: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
