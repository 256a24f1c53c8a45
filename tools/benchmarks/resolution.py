"""Cost against resolution: a training step and inference of gattn and of the
full-resolution ImageClassifier with the same ResNet-18 layout, for growing inputs.

Both models are timed interleaved in one process (so the ratio holds on a noisy
machine), several repeats, median. Peak memory of each (model, size) is measured in
a fresh child process (CPU: growth of the peak RSS, VmHWM, during one training step
after the model and the batch exist; GPU: max allocated).
Also reports the share of a gattn training step spent in the sampler and crop:
timed like the steps (median over the repeats of choosing the boxes from the model's
own attention and cutting the crops, over the median step), and, as a cross-check,
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from the torch profiler (which adds a fixed cost to every op and so inflates a
section of many small ops such as the sampler). Writes JSON, a markdown table and a
PNG plot; prints a rich table."""
import argparse
import json
import logging
import multiprocessing as mp
import os
import os.path as osp
import platform
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import gattn_mm  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

GATTN_CFG = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
FULL_CFG = osp.join(ROOT, 'configs', 'baselines', 'digitbags_full_res.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   help='input sides (default 512 1024 2048 4096; --quick: 128 256)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--repeats', type=int, default=11,
                   help='timed repeats per size and model; the median is reported')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--quick', action='store_true', help='tiny sizes, 2 repeats (tests)')
    p.add_argument('--out-dir', default='benchmarks/results')
    p.add_argument('--tag', default=None, help='file name tag (default: cpu or the GPU name)')
    return p.parse_args(argv)


def build(kind: str, device: str):
    cfg = Config.fromfile(GATTN_CFG if kind == 'gattn' else FULL_CFG)
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # no per-parameter initialisation report
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.to(device)


def batch(size: int, n: int, device: str):
    x = torch.rand(n, 3, size, size, device=device) * 4 - 2
    return x, [DataSample().set_gt_label(i % 2) for i in range(n)]


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def train_step(model, x, samples, opt):
    losses = model(x, samples, mode='loss')
    loss = sum(losses.values())
    opt.zero_grad()
    loss.backward()
    opt.step()


def timed(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def _status_mb(field: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _memory_child(kind, size, n, device, queue):
    torch.manual_seed(0)
    model = build(kind, device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, samples = batch(size, n, device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        train_step(model, x, samples, opt)
        queue.put((torch.cuda.max_memory_allocated() - base) / 2**20)
    else:
        if not reset_peak_rss():
            raise RuntimeError('cannot reset the peak RSS (/proc/self/clear_refs)')
        base = _status_mb('VmRSS')
        train_step(model, x, samples, opt)
        queue.put(_status_mb('VmHWM') - base)


def peak_memory(kind, size, n, device) -> float:
    ctx = mp.get_context('spawn')  # fork after OpenMP/CUDA use can hang the child
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(kind, size, n, device, queue))
    proc.start()
    value = queue.get(timeout=1800)
    proc.join()
    return float(value)


def sampler_share(model, x, samples, opt) -> float:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step(model, x, samples, opt)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    sampler = sum(e.cpu_time_total for e in events if e.key == 'gattn.sampler')
    sampler += sum(e.self_cpu_time_total for e in events if 'roi_align_backward' in e.key.lower()
                   or 'RoiAlignBackward' in e.key)
    return 100.0 * sampler / max(total, 1e-9)


def sampler_step(model, x):
    """A closure that runs the sampler and the crop of ``model`` on ``x``, with the
    attention the model's glance gives for it (autograd on, as in training)."""
    attention, _ = model.neck(model.backbone(model.glance(x)))
    size = tuple(x.shape[-2:])

    def run():
        model.sampler.crop(x, model.sampler(attention, size)[1])
    return run


def measure(sizes, n, repeats, device):
    torch.manual_seed(0)
    models = {k: build(k, device) for k in ('gattn', 'full_res')}
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}
    rows = []
    for size in sizes:
        x, samples = batch(size, n, device)
        times = {k: dict(train=[], infer=[]) for k in models}
        sampler_times = []
        for k, m in models.items():  # warm-up
            m.train()
            train_step(m, x, samples, opts[k])
        run_sampler = sampler_step(models['gattn'], x)
        run_sampler()
        for _ in range(repeats):
            for k, m in models.items():  # interleaved
                m.train()
                times[k]['train'].append(timed(lambda: train_step(m, x, samples, opts[k]),
                                               device))
                if k == 'gattn':
                    sampler_times.append(timed(run_sampler, device))
                m.eval()
                with torch.no_grad():
                    times[k]['infer'].append(timed(lambda: m(x, mode='tensor'), device))
        models['gattn'].train()
        share = sampler_share(models['gattn'], x, samples, opts['gattn'])
        row = dict(size=size, sampler_s=statistics.median(sampler_times),
                   sampler_share_pct=100 * statistics.median(sampler_times) /
                   statistics.median(times['gattn']['train']),
                   sampler_share_profiler_pct=share)
        for k in models:
            row[f'{k}_train_s'] = statistics.median(times[k]['train'])
            row[f'{k}_infer_s'] = statistics.median(times[k]['infer'])
            row[f'{k}_peak_mem_mb'] = peak_memory(k, size, n, device)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(rows, machine) -> str:
    lines = [f'Machine: {machine}', '',
             '| input | gattn step (s) | full-res step (s) | speed-up | gattn infer (s) | '
             'full-res infer (s) | gattn peak mem (MB) | full-res peak mem (MB) | '
             'memory ratio | sampler+crop share of a gattn step (timed / profiler) |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in rows:
        lines.append(
            f"| {r['size']}² | {r['gattn_train_s']:.3f} | {r['full_res_train_s']:.3f} | "
            f"{r['full_res_train_s'] / r['gattn_train_s']:.1f}× | {r['gattn_infer_s']:.3f} | "
            f"{r['full_res_infer_s']:.3f} | {r['gattn_peak_mem_mb']:.0f} | "
            f"{r['full_res_peak_mem_mb']:.0f} | "
            f"{r['full_res_peak_mem_mb'] / max(r['gattn_peak_mem_mb'], 1e-9):.1f}× | "
            f"{r['sampler_share_pct']:.1f} % / {r['sampler_share_profiler_pct']:.1f} % |")
    return '\n'.join(lines) + '\n'


def plot(rows, path, machine):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    sizes = [r['size'] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (('gattn', 'gattn'), ('full_res', 'full-res ImageClassifier')):
        axes[0].plot(sizes, [r[f'{key}_train_s'] for r in rows], 'o-', label=f'{label} train')
        axes[0].plot(sizes, [r[f'{key}_infer_s'] for r in rows], 's--', label=f'{label} infer')
        axes[1].plot(sizes, [r[f'{key}_peak_mem_mb'] for r in rows], 'o-', label=label)
    for ax, title in zip(axes, ('time per step (s)', 'peak memory of a step (MB)')):
        ax.set_xscale('log', base=2)
        ax.set_yscale('log')
        ax.set_xlabel('input side (px)')
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle(machine, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def machine_name(device) -> str:
    if device.startswith('cuda'):
        return f'{torch.cuda.get_device_name()} (torch {torch.__version__})'
    return (f'CPU {platform.processor() or platform.machine()}, '
            f'{torch.get_num_threads()} threads (torch {torch.__version__})')


def main(argv=None):
    args = parse_args(argv)
    sizes = args.sizes or ([128, 256] if args.quick else [512, 1024, 2048, 4096])
    repeats = 2 if args.quick else args.repeats
    rows = measure(sizes, args.batch_size, repeats, args.device)
    machine = machine_name(args.device)
    tag = args.tag or ('cpu' if args.device == 'cpu' else
                       torch.cuda.get_device_name().replace(' ', '_'))
    if args.quick:
        tag += '_quick'
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, f'resolution_{tag}')
    result = dict(machine=machine, device=args.device, batch_size=args.batch_size,
                  repeats=repeats, command='python tools/benchmarks/resolution.py ' +
                  ' '.join(argv if argv is not None else sys.argv[1:]), rows=rows)
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    with open(stem + '.md', 'w') as f:
        f.write(markdown(rows, machine))
    plot(rows, stem + '.png', machine)
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f'gattn vs full-res ({machine})')
    for col in ('input', 'gattn step s', 'full step s', 'gattn mem MB', 'full mem MB',
                'sampler %'):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r['size']), f"{r['gattn_train_s']:.3f}",
                      f"{r['full_res_train_s']:.3f}", f"{r['gattn_peak_mem_mb']:.0f}",
                      f"{r['full_res_peak_mem_mb']:.0f}", f"{r['sampler_share_pct']:.1f}")
    Console().print(table)
    print(f'wrote {stem}.json, {stem}.md, {stem}.png')
    return result


if __name__ == '__main__':
    main()
