"""Accuracy against baselines on DigitBags: train and test, on the same generated
split and the same epoch budget, the gattn model (configs/gattn_digitbags.py), the
global-only ImageClassifier at gattn's global resolution and the full-resolution
ImageClassifier on the whole canvas. Reports accuracy, gattn's localisation scores,
train and test time and peak memory (peak RSS of each tool process); writes JSON and
a markdown table."""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODELS = {
    'gattn': 'configs/gattn_digitbags.py',
    'global_only': 'configs/baselines/digitbags_global_only.py',
    'full_res': 'configs/baselines/digitbags_full_res.py',
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--data-root', default='data/digitbags',
                   help='DigitBags directory (generated with the defaults when missing)')
    p.add_argument('--work-dir', default='work_dirs/benchmark_accuracy')
    p.add_argument('--epochs', type=int, default=None,
                   help='epoch budget for every model (default: the gattn config\'s)')
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    p.add_argument('--seed', type=int, default=None,
                   help='training seed of every model (randomness.seed; default: the '
                        'configs\' 0); the data stay those of --data-root')
    p.add_argument('--quick', action='store_true',
                   help='tiny generated data, 1 epoch (for tests)')
    p.add_argument('--out-dir', default='benchmarks/results')
    p.add_argument('--tag', default=None,
                   help='suffix of the result files: accuracy_TAG.{json,md} (default: '
                        'accuracy.{json,md}), e.g. for a run with another --epochs budget')
    return p.parse_args(argv)


def run_measured(cmd, log_path):
    """Run ``cmd``; return (seconds, peak RSS in MB of that process)."""
    t = time.perf_counter()
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed; see {log_path}')
    return seconds, usage.ru_maxrss / 1024


def ensure_data(args):
    if osp.isfile(osp.join(ROOT, args.data_root, 'meta.json')):
        return
    cmd = [sys.executable, 'tools/dataset_converters/make_digitbags.py', '--out',
           args.data_root, '--no-progress']
    if args.quick:
        cmd += ['--canvas', '128', '--digit-size', '12', '--instances', '2', '3',
                '--num-train', '16', '--num-val', '8', '--num-test', '8']
    subprocess.run(cmd, cwd=ROOT, check=True)


def main(argv=None):
    args = parse_args(argv)
    if args.quick:
        args.data_root = osp.join(args.work_dir, 'digitbags_quick')
        args.epochs = 1
    ensure_data(args)
    data_opts = [f'{k}_dataloader.dataset.data_root={args.data_root}'
                 for k in ('train', 'val', 'test')]
    opts = list(data_opts)
    if args.epochs:
        opts.append(f'train_cfg.max_epochs={args.epochs}')
    if args.seed is not None:
        opts.append(f'randomness.seed={args.seed}')
    if args.quick:
        opts += ['train_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
                 'test_dataloader.batch_size=4']
    rows = []
    for name in args.models:
        config = MODELS[name]
        work = osp.join(args.work_dir, name)
        os.makedirs(osp.join(ROOT, work), exist_ok=True)
        train_s, train_mb = run_measured(
            [sys.executable, 'tools/train.py', config, '--work-dir', work,
             '--cfg-options', *opts], osp.join(ROOT, work, 'train.log'))
        ckpt = open(osp.join(ROOT, work, 'last_checkpoint')).read().strip()
        metrics_file = osp.join(work, 'test_metrics.json')
        test_s, test_mb = run_measured(
            [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', work, '--out',
             metrics_file, '--out-item', 'metrics', '--cfg-options', *data_opts],
            osp.join(ROOT, work, 'test.log'))
        metrics = json.load(open(osp.join(ROOT, metrics_file)))
        row = dict(model=name, config=config, checkpoint=ckpt,
                   accuracy=metrics['accuracy/top1'], train_s=train_s, test_s=test_s,
                   train_peak_mb=train_mb, test_peak_mb=test_mb)
        for key in ('target_recall', 'instance_recall', 'pointing_game'):
            if f'loc/{key}' in metrics:
                row[key] = metrics[f'loc/{key}']
        rows.append(row)
        print(json.dumps(row), flush=True)
    machine = f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores'
    result = dict(machine=machine, data_root=args.data_root, epochs=args.epochs,
                  command='python tools/benchmarks/accuracy.py ' +
                  ' '.join(argv if argv is not None else sys.argv[1:]), rows=rows)
    os.makedirs(args.out_dir, exist_ok=True)
    name = 'accuracy' + (f'_{args.tag}' if args.tag else '')
    stem = osp.join(args.out_dir, name + ('_quick' if args.quick else ''))
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    with open(stem + '.md', 'w') as f:
        f.write(markdown(result))
    print(markdown(result))
    return result


def markdown(result) -> str:
    lines = [f"Machine: {result['machine']}; command: `{result['command']}`", '',
             '| model | config | test accuracy (%) | target recall (%) | pointing game (%) | '
             'train time (s) | test time (s) | peak memory train / test (MB) |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in result['rows']:
        loc = lambda k: f"{r[k]:.1f}" if k in r else '–'  # noqa: E731
        lines.append(f"| {r['model']} | `{r['config']}` | {r['accuracy']:.2f} | "
                     f"{loc('target_recall')} | {loc('pointing_game')} | {r['train_s']:.0f} | "
                     f"{r['test_s']:.0f} | {r['train_peak_mb']:.0f} / {r['test_peak_mb']:.0f} |")
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
