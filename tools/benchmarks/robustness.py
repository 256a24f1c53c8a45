"""Robust, not lucky: the DigitBags gattn config trained once, recipe unchanged, on
DigitBags variants across the generator's documented ranges (other target digits,
up to 10 digits per bag, other digit sizes, other data and training seeds). Per
variant: test accuracy, localisation, the validation accuracy at every validation
(when the reader took off), train time. Rows are merged by variant into
``<out-dir>/robustness_digitbags[_TAG].json`` and a markdown table; ``--reuse`` tests
a variant's last checkpoint again without training (e.g. after a change of the
decision rule), keeping its train time and validation curve."""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from accuracy import LOC, ROOT, command_history, machine, run_measured  # noqa: E402

CONFIG = 'configs/gattn_digitbags.py'
# name: (generator options, training seed)
VARIANTS = {
    'default_train_seed1': ([], 1),
    'target3_data_seed1': (['--target', '3', '--seed', '1'], 0),
    'digits6to10_data_seed2': (['--instances', '6', '10', '--seed', '2'], 0),
    'target7_size20_data_seed3': (['--target', '7', '--digit-size', '20', '--seed', '3'], 2),
    'target4_digits8to10_data_seed4': (['--target', '4', '--instances', '8', '10', '--seed',
                                        '4'], 3),
    'target1_digits1to10_data_seed5': (['--target', '1', '--instances', '1', '10', '--seed',
                                        '5'], 4),
}
QUICK = ['--canvas', '128', '--digit-size', '12', '--instances', '2', '3',
         '--num-train', '16', '--num-val', '8', '--num-test', '8']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument('--data-dir', default='data/robustness',
                   help='one generated DigitBags folder per variant under it')
    p.add_argument('--work-dir', default='work_dirs/robustness')
    p.add_argument('--quick', action='store_true',
                   help='tiny generated data, 1 epoch (for tests)')
    p.add_argument('--reuse', action='store_true',
                   help="test each variant's last checkpoint in --work-dir again, no "
                        'training (train time from its train_done.json)')
    p.add_argument('--out-dir', default='benchmarks/results')
    p.add_argument('--tag', default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.data_dir = osp.join(args.work_dir, 'data_quick')
    return args


def generate(args, name: str, options) -> str:
    root = osp.join(args.data_dir, name)
    if not osp.isfile(osp.join(ROOT, root, 'meta.json')):
        if args.quick:  # the variant's target and seed on tiny bags
            options = QUICK + [v for i, v in enumerate(options) if v in ('--target', '--seed')
                               or (i and options[i - 1] in ('--target', '--seed'))]
        subprocess.run([sys.executable, 'tools/dataset_converters/make_digitbags.py',
                        '--out', root, '--no-progress', *options], cwd=ROOT, check=True)
    return root


def val_curve(work: str):
    """[(epoch, val accuracy)] from the run's scalars.json."""
    files = sorted(glob.glob(osp.join(ROOT, work, '*', 'vis_data', 'scalars.json')))
    curve = []
    for line in open(files[-1]) if files else []:
        entry = json.loads(line)
        if 'accuracy/top1' in entry:
            curve.append((entry.get('step'), entry['accuracy/top1']))
    return curve


def train(args, work: str, opts) -> float:
    """Train into ``work`` (or, with --reuse, keep what is there); the train time."""
    done = osp.join(ROOT, work, 'train_done.json')
    if args.reuse:
        for name in ('last_checkpoint', 'train_done.json'):
            if not osp.isfile(osp.join(ROOT, work, name)):
                raise SystemExit(f'--reuse: no {name} in {work}; train it first')
        return json.load(open(done))['train_s']
    train_s, _ = run_measured([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work,
                               '--cfg-options', *opts], osp.join(ROOT, work, 'train.log'))
    with open(done, 'w') as f:
        json.dump(dict(train_s=train_s), f)
    return train_s


def run_variant(args, name: str) -> dict:
    options, seed = VARIANTS[name]
    root = generate(args, name, options)
    work = osp.join(args.work_dir, name)
    os.makedirs(osp.join(ROOT, work), exist_ok=True)
    data = [f'{k}_dataloader.dataset.data_root={root}' for k in ('train', 'val', 'test')]
    opts = data + [f'randomness.seed={seed}']
    if args.quick:
        batch = [f'{k}_dataloader.batch_size=4' for k in ('train', 'val', 'test')]
        opts += batch + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
        data += batch
    train_s = train(args, work, opts)
    ckpt = open(osp.join(ROOT, work, 'last_checkpoint')).read().strip()
    metrics_file = osp.join(work, 'test_metrics.json')
    run_measured([sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir', work,
                  '--out', metrics_file, '--out-item', 'metrics', '--cfg-options', *data],
                 osp.join(ROOT, work, 'test.log'))
    metrics = json.load(open(osp.join(ROOT, metrics_file)))
    row = dict(variant=name, generator=' '.join(options) or '(defaults)', train_seed=seed,
               accuracy=metrics['accuracy/top1'], train_s=train_s,
               val_curve=val_curve(work))
    row.update({k: metrics[f'loc/{k}'] for k in LOC if f'loc/{k}' in metrics})
    return row


def main(argv=None):
    args = parse_args(argv)
    name = 'robustness_digitbags' + (f'_{args.tag}' if args.tag else '') + \
        ('_quick' if args.quick else '')
    stem = osp.join(args.out_dir, name)
    previous = json.load(open(stem + '.json')) if osp.isfile(stem + '.json') else {}
    rows = {r['variant']: r for r in previous.get('rows', [])}
    commands = command_history(previous, 'python tools/benchmarks/robustness.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:]))
    for variant in args.variants:
        rows[variant] = run_variant(args, variant)
        print(json.dumps(rows[variant]), flush=True)
        result = dict(machine=machine(), config=CONFIG, command=commands[-1],
                      commands=commands, rows=[rows[v] for v in VARIANTS if v in rows])
        os.makedirs(args.out_dir, exist_ok=True)
        with open(stem + '.json', 'w') as f:
            json.dump(result, f, indent=1)
        with open(stem + '.md', 'w') as f:
            f.write(markdown(result))
    print(markdown(result))
    return result


def markdown(result) -> str:
    commands = result.get('commands', [result['command']])
    lines = [f"Machine: {result['machine']}; config `{result['config']}`, unchanged; "
             f"commands: " + '; '.join(f'`{c}`' for c in commands), '',
             '| variant | generator options | train seed | test accuracy (%) | '
             'val accuracy by epoch (%) | target digits covered (%) | '
             'pointing game / random digit (%) | train time (s) |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in result['rows']:
        curve = ', '.join(f'{e}: {a:.1f}' for e, a in r['val_curve'])
        num = lambda k: f"{r[k]:.1f}" if k in r else '–'  # noqa: E731
        lines.append(f"| {r['variant']} | `{r['generator']}` | {r['train_seed']} | "
                     f"{r['accuracy']:.2f} | {curve} | {num('target_recall')} | "
                     f"{num('pointing_game')} / {num('pointing_baseline')} | "
                     f"{r['train_s']:.0f} |")
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
