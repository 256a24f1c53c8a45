"""Ablations in one benchmark run, on DigitBags (presence of a 9) or on Megapixel
digits (the majority digit among scribbles), same generated split, same epoch
budget; and the Megapixel recipe on the IPS tasks ``megapixel_max`` (the largest
digit present) and ``megapixel_multi`` (multi-label: the classes present; scored
with mmpretrain's multi-label metrics), where only ``gattn`` has a config:

- ``gattn``: the shipped config (learned attention);
- ``instance_head``: gattn's checkpoint deciding with its instances alone (test
  only);
- ``fused_head``: gattn's checkpoint deciding with its fused head alone (global
  feature + weighted instance features, the paper's classifier; test only);
- ``both_heads``: gattn's checkpoint deciding with the mean of both heads, for a
  config that decides with one (SynthCells; test only);
- ``contrast_attention``: gattn's checkpoint with the attention replaced by the
  hand-made contrast prior alone (test only: same reader and heads);
- ``random_attention``: the same with random cells (test only);
- ``global_only``: an ImageClassifier on gattn's global view;
- ``full_res``: an ImageClassifier on the whole image, trained for the wall-clock
  time gattn took (TimeBudgetHook) when gattn ran first.

Per model: test accuracy, the localisation scores (share of target digits and of
all digits covered by the sampled boxes, share of boxes that hold a digit, pointing
game beside its random-digit baseline), train and test time, peak memory (peak RSS
of each tool process). Rows go into ``<out-dir>/accuracy_<benchmark>[_TAG].json``
(merged by model with the rows already there) and a markdown table."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import json
import math
import os
import os.path as osp
import platform
import shlex
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODELS = ('gattn', 'instance_head', 'fused_head', 'both_heads', 'contrast_attention',
          'random_attention', 'global_only', 'full_res')
# test only, on gattn's checkpoint
TEST_ONLY = ('instance_head', 'fused_head', 'both_heads', 'contrast_attention',
             'random_attention')
DATA = {  # generator options: full, --quick
    'digitbags': ([], ['--canvas', '128', '--digit-size', '12', '--instances', '2', '3',
                       '--num-train', '16', '--num-val', '8', '--num-test', '8']),
    # --quick on 1500 px images: 8 to train (2 iterations at QUICK_BATCH), 8 each to
    # validate and test
    'megapixel': (['--preset', 'megapixel'],
                  ['--preset', 'megapixel', '--num-train', '8', '--num-val', '8',
                   '--num-test', '8']),
}
for _task in ('max', 'multi'):
    DATA[f'megapixel_{_task}'] = tuple([*opts, '--task', _task] for opts in DATA['megapixel'])
# SynthCells, the microscopy benchmark (species task; --data-opts gives a variant)
DATA['synthcells'] = ([], ['--size', '256', '320', '--cell-size', '24', '28',
                           '--large-cells', '4', '6', '--markers', '1', '2',
                           '--debris', '2', '4', '--num-train', '8', '--num-val', '8',
                           '--num-test', '8'])
GENERATORS = {'synthcells': 'tools/dataset_converters/make_synthcells.py'}  # else digits
GATTN_CONFIGS = {'synthcells': 'configs/gattn_fungi_cpu.py'}  # else gattn_<benchmark>.py
# test metrics kept per row: single-label accuracy, or the multi-label scores
SCORES = {'accuracy': 'accuracy/top1', 'f1_macro': 'multi-label/f1-score',
          'f1_micro': 'multi-label/f1-score_micro', 'mAP': 'multi-label/mAP'}
QUICK_BATCH = 4  # --quick: batch size of every data loader
LOC = ('target_recall', 'instance_recall', 'box_precision', 'pointing_game',
       'pointing_baseline')


def config_of(benchmark: str, model: str) -> str:
    if model == 'gattn':
        return GATTN_CONFIGS.get(benchmark, f'configs/gattn_{benchmark}.py')
    return f'configs/baselines/{benchmark}_{model}.py'


def has_config(benchmark: str, model: str) -> bool:
    return osp.isfile(osp.join(ROOT, config_of(benchmark, model)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--benchmark', default='digitbags', choices=list(DATA))
    p.add_argument('--data-root', default=None,
                   help='the data (default data/<benchmark>; generated with the defaults '
                        'when missing)')
    p.add_argument('--data-opts', dest='generator_opts', type=shlex.split, default=[],
                   metavar='"OPTS"',
                   help='more options of the data generator, one quoted string, when '
                        '--data-root is generated (a variant of the data, e.g. '
                        '--data-opts="--seed 1 --cell-size 24 32")')
    p.add_argument('--work-dir', default=None,
                   help='default work_dirs/benchmark_<benchmark>')
    p.add_argument('--epochs', type=int, default=None,
                   help='epoch budget of every trained model (default: each config\'s)')
    p.add_argument('--models', nargs='+', default=None, choices=list(MODELS),
                   help='default: every model with a config for --benchmark')
    p.add_argument('--seed', type=int, default=None,
                   help='training seed of every model (randomness.seed; default: the '
                        'configs\' 0); the data stay those of --data-root')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='more config options of every training and test, as tools/train.py '
                        'takes them (an ablation of the shipped config, e.g. '
                        'optim_wrapper.optimizer.lr=5e-4); recorded in the command')
    p.add_argument('--reuse', action='store_true',
                   help='do not retrain a model whose work dir holds a training this '
                        'benchmark finished (train_done.json) with the same command (one '
                        'made otherwise is refused, naming both); the test-only models '
                        '(gattn\'s checkpoint) always reuse gattn\'s finished training '
                        'when gattn is not in --models')
    p.add_argument('--checkpoint', choices=('last', 'best'), default='last',
                   help='which checkpoint of a training is tested: the last epoch\'s '
                        '(default) or the one of best val accuracy that the configs\' '
                        'CheckpointHook keeps (save_best)')
    p.add_argument('--quick', action='store_true',
                   help='tiny generated data, 1 epoch (for tests)')
    p.add_argument('--out-dir', default='benchmarks/results')
    p.add_argument('--tag', default=None,
                   help='suffix of the result files: accuracy_<benchmark>_TAG.{json,md}')
    args = p.parse_args(argv)
    args.data_root = args.data_root or f'data/{args.benchmark}'
    args.work_dir = args.work_dir or f'work_dirs/benchmark_{args.benchmark}'
    if args.models is None:
        args.models = [m for m in MODELS if has_config(args.benchmark, m)]
    missing = [m for m in args.models if not has_config(args.benchmark, m)]
    if missing:
        p.error(f'--benchmark {args.benchmark} has no config for --models '
                f'{" ".join(missing)} (expected {config_of(args.benchmark, missing[0])})')
    malformed = [o for o in args.cfg_options if '=' not in o]
    if malformed:
        p.error(f'--cfg-options {malformed[0]}: expected KEY=VALUE, as tools/train.py '
                f'takes them')
    if args.epochs is not None and args.epochs < 1:
        p.error(f'--epochs must be >= 1, got {args.epochs}')
    if args.quick:
        args.data_root = osp.join(args.work_dir, f'{args.benchmark}_quick')
        args.epochs = 1
    return args


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
    full, quick = DATA[args.benchmark]
    generator = GENERATORS.get(args.benchmark, 'tools/dataset_converters/make_digitbags.py')
    cmd = [sys.executable, generator, '--out', args.data_root, '--no-progress',
           *(quick if args.quick else full), *args.generator_opts]
    subprocess.run(cmd, cwd=ROOT, check=True)


def epoch_opts(args, config: str) -> list:
    """``--epochs`` as the config's training loop counts: epochs, or for an
    ``IterBasedTrainLoop`` the iterations of as many passes over the training split
    at the config's (or ``--quick``'s) batch size."""
    if not args.epochs:
        return []
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config), import_custom_modules=False)
    if cfg.train_cfg.get('type') != 'IterBasedTrainLoop':
        return [f'train_cfg.max_epochs={args.epochs}']
    with open(osp.join(ROOT, args.data_root, 'train.txt')) as f:
        num_train = sum(1 for line in f if line.strip())
    batch = QUICK_BATCH if args.quick else cfg.train_dataloader.batch_size
    return [f'train_cfg.max_iters={args.epochs * math.ceil(num_train / batch)}']


def label_opts(args, config: str) -> list:
    """The label set of a species-folder benchmark (SynthCells) from the data's
    training folders, as a user sets it when ``tools/train.py`` asks
    (:func:`gattn_mm.apis.cli.label_set_options`: ``num_classes``, and a presence
    task's ``negative_class``); nothing when the config already fits."""
    if args.benchmark not in GENERATORS:
        return []
    from mmengine.config import Config
    from gattn_mm.apis.cli import label_set_options
    from gattn_mm.datasets import Fungi
    classes = Fungi.folders(osp.join(ROOT, args.data_root, 'train'))
    model = Config.fromfile(osp.join(ROOT, config), import_custom_modules=False).model
    return label_set_options(model, classes)


def train(args, name: str, config: str, opts, budget_s=None, reuse=None) -> dict:
    """Train ``config`` into <work>/<name>; return its train_done.json record (the
    finished training's when ``reuse``, default ``--reuse``, if the same command made
    it: other epochs, seed, data or a ``--quick`` run are refused, not reused)."""
    work = osp.join(args.work_dir, name)
    done = osp.join(ROOT, work, 'train_done.json')
    opts = list(opts) + label_opts(args, config)
    if budget_s is not None and name == 'full_res':
        opts.append(f'custom_hooks.1.seconds={budget_s:.0f}')
    opts += args.cfg_options  # last: they win
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work,
           '--cfg-options', *opts]
    if (args.reuse if reuse is None else reuse) and osp.isfile(done):
        record = json.load(open(done))
        if record.get('command') != ' '.join(cmd[1:]):
            raise SystemExit(
                f'{done}: made by `{record.get("command")}`, not by this run\'s '
                f'`{" ".join(cmd[1:])}`; retrain it (name {name} in --models, without '
                f'--reuse) or choose another --work-dir')
        return record
    os.makedirs(osp.join(ROOT, work), exist_ok=True)
    train_s, train_mb = run_measured(cmd, osp.join(ROOT, work, 'train.log'))
    ckpt = open(osp.join(ROOT, work, 'last_checkpoint')).read().strip()
    record = dict(checkpoint=osp.relpath(ckpt, ROOT) if osp.isabs(ckpt) else ckpt,
                  train_s=train_s, train_peak_mb=train_mb, command=' '.join(cmd[1:]))
    with open(done, 'w') as f:
        json.dump(record, f, indent=1)
    return record


def best_checkpoint(last: str) -> str:
    """The ``best_*.pth`` (save_best) beside the training's ``last`` checkpoint."""
    work = osp.dirname(last)
    best = sorted(f for f in os.listdir(osp.join(ROOT, work))
                  if f.startswith('best_') and f.endswith('.pth'))
    if len(best) != 1:
        raise SystemExit(f'--checkpoint best: expected one best_*.pth in {work}, found '
                         f'{best or "none"} (the config\'s CheckpointHook sets save_best)')
    return osp.join(work, best[0])


def test(args, name: str, config: str, ckpt: str, data_opts) -> dict:
    work = osp.join(args.work_dir, name)
    os.makedirs(osp.join(ROOT, work), exist_ok=True)
    metrics_file = osp.join(work, 'test_metrics.json')
    test_s, test_mb = run_measured(
        [sys.executable, 'tools/test.py', config, ckpt, '--work-dir', work, '--out',
         metrics_file, '--out-item', 'metrics', '--cfg-options', *data_opts,
         *label_opts(args, config), *args.cfg_options],
        osp.join(ROOT, work, 'test.log'))
    metrics = json.load(open(osp.join(ROOT, metrics_file)))
    row = {k: metrics[key] for k, key in SCORES.items() if key in metrics}
    row.update(test_s=test_s, test_peak_mb=test_mb)
    row.update({k: metrics[f'loc/{k}'] for k in LOC if f'loc/{k}' in metrics})
    return row


def main(argv=None):
    args = parse_args(argv)
    ensure_data(args)
    data_opts = [f'{k}_dataloader.dataset.data_root={args.data_root}'
                 for k in ('train', 'val', 'test')]
    opts = list(data_opts)
    if args.seed is not None:
        opts.append(f'randomness.seed={args.seed}')
    if args.quick:
        batch = [f'{k}_dataloader.batch_size={QUICK_BATCH}' for k in ('train', 'val', 'test')]
        opts += batch
        data_opts = data_opts + batch
    name = f'accuracy_{args.benchmark}' + (f'_{args.tag}' if args.tag else '')
    stem = osp.join(args.out_dir, name + ('_quick' if args.quick else ''))
    previous = json.load(open(stem + '.json')) if osp.isfile(stem + '.json') else {}
    rows = {r['model']: r for r in previous.get('rows', [])}
    commands = command_history(previous, 'python tools/benchmarks/accuracy.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:]))
    gattn = None
    for model in sorted(set(args.models), key=MODELS.index):  # gattn first: the others use it
        config = config_of(args.benchmark, model)
        if model in TEST_ONLY or model == 'gattn':
            if gattn is None:  # trained once; rows of its checkpoint alone never retrain it
                gattn_config = config_of(args.benchmark, 'gattn')
                gattn = train(args, 'gattn', gattn_config, opts + epoch_opts(args, gattn_config),
                              reuse=args.reuse or 'gattn' not in args.models)
            record = gattn if model == 'gattn' else dict(
                checkpoint=gattn['checkpoint'], train_s=None, train_peak_mb=None)
        else:
            budget = (gattn or rows.get('gattn', {})).get('train_s')
            record = train(args, model, config, opts + epoch_opts(args, config), budget)
        if args.checkpoint == 'best':
            record = dict(record, checkpoint=best_checkpoint(record['checkpoint']))
        row = dict(model=model, config=config, checkpoint=record['checkpoint'],
                   train_s=record['train_s'], train_peak_mb=record['train_peak_mb'])
        row.update(test(args, model, config, record['checkpoint'], data_opts))
        rows[model] = row
        print(json.dumps(row), flush=True)
        write(args, stem, [rows[m] for m in MODELS if m in rows], commands)
    result = json.load(open(stem + '.json'))
    print(markdown(result))
    return result


def command_history(previous: dict, command: str) -> list:
    """Every invocation that wrote rows into a results file (``previous``, as read
    back; older files name one ``command``), with ``command`` last and once."""
    old = previous.get('commands', [previous['command']] if previous else [])
    return [c for c in old if c != command] + [command]


def machine() -> str:
    """The machine line of a results file, e.g. ``x86_64, 2 cores``."""
    return f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores'


def write(args, stem: str, rows, commands) -> None:
    """Write the rows; ``commands`` lists every invocation that wrote rows here, this
    one last."""
    result = dict(machine=machine(), benchmark=args.benchmark, data_root=args.data_root,
                  epochs=args.epochs, command=commands[-1], commands=commands, rows=rows)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    with open(stem + '.md', 'w') as f:
        f.write(markdown(result))


def markdown(result) -> str:
    commands = result.get('commands', [result['command']])
    multi = any('accuracy' not in r for r in result['rows'])
    score_name = 'test F1 macro / micro, mAP (%)' if multi else 'test accuracy (%)'
    lines = [f"Machine: {result['machine']}; commands: " +
             ', '.join(f'`{c}`' for c in commands), '',
             f'| model | config | {score_name} | target / all digits covered (%) | '
             'boxes holding a digit (%) | pointing game / random digit (%) | '
             'train time (s) | test time (s) | peak memory train / test (MB) |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    num = lambda r, k, f='.1f': format(r[k], f) if r.get(k) is not None else '–'  # noqa
    for r in result['rows']:
        lines.append(
            f"| {r['model']} | `{r['config']}` | {score(r)} | "
            f"{num(r, 'target_recall')} / {num(r, 'instance_recall')} | "
            f"{num(r, 'box_precision')} | "
            f"{num(r, 'pointing_game')} / {num(r, 'pointing_baseline')} | "
            f"{num(r, 'train_s', '.0f')} | {num(r, 'test_s', '.0f')} | "
            f"{num(r, 'train_peak_mb', '.0f')} / {num(r, 'test_peak_mb', '.0f')} |")
    return '\n'.join(lines) + '\n'


def score(row: dict) -> str:
    """The test score cell: accuracy, or the multi-label F1 (macro / micro) and mAP."""
    if 'accuracy' in row:
        return f"{row['accuracy']:.2f}"
    return f"{row['f1_macro']:.2f} / {row['f1_micro']:.2f}, {row['mAP']:.2f}"


if __name__ == '__main__':
    main()
