"""The prepared GPU check (tools/device/gpu_check.sh runs it): the toolkit on a CUDA
machine in under 10 minutes, one JSON and one markdown table.

Steps, each a subprocess with its own time limit, each recorded (ok / failed /
skipped, seconds, the lines that matter):
  1. the device-parametrised tests (tests/test_devices.py) on ``cuda``;
  2. a short DigitBags training through tools/train.py with --amp (bf16 where the
     card supports it), then a 1-process tools/dist_train.sh (nccl);
  3. the resolution benchmark on the device (batch 1 up to 8192 px, batch 32 up to
     2048 px) beside the full-resolution ImageClassifier;
  4. the default DigitBags recipe to the end, when the budget allows: wall-clock and
     test accuracy.
``--dry-run`` runs the same wiring on the CPU with tiny data, no AMP, quick sizes (CI)."""
import argparse
import json
import os
import os.path as osp
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out-dir', required=True, help='where gpu_check.{json,md} go')
    p.add_argument('--work-dir', default=None,
                   help='data, runs and step logs (default: a new folder under /tmp, so '
                   'that only the results travel back from the device)')
    p.add_argument('--dry-run', action='store_true', help='CPU wiring check, tiny sizes')
    p.add_argument('--budget', type=float, default=540., help='seconds for all steps')
    return p.parse_args(argv)


class Check:
    """Runs the steps and records them."""

    def __init__(self, args):
        self.args, self.start, self.steps = args, time.time(), []
        self.work = args.work_dir or tempfile.mkdtemp(prefix='gpu_check_')
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ, PYTHONUNBUFFERED='1',
                        PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))

    def left(self) -> float:
        return self.args.budget - (time.time() - self.start)

    def run(self, name, cmd, timeout, keep=r'accuracy/top1|\d+ (passed|failed|skipped)|Error',
            need=60.):
        """Run ``cmd``; record it as ``name``. Skipped when less than ``need`` s are left."""
        if self.left() < need:
            self.steps.append(dict(step=name, status='skipped (budget)', seconds=0.))
            return None
        t = time.time()
        log = osp.join(self.work, re.sub(r'\W+', '_', name) + '.log')
        try:
            with open(log, 'w') as f:
                proc = subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=f,
                                      stderr=subprocess.STDOUT,
                                      timeout=min(timeout, max(self.left(), 1)))
            status = 'ok' if proc.returncode == 0 else f'failed (exit {proc.returncode})'
        except subprocess.TimeoutExpired:
            status = 'failed (timeout)'
        text = open(log).read()
        lines = [ln.strip()[:300] for ln in text.splitlines() if re.search(keep, ln)][-3:]
        tail = text.splitlines()[-15:] if status != 'ok' else []  # what went wrong
        self.steps.append(dict(step=name, status=status, seconds=round(time.time() - t, 1),
                               detail=lines, tail=tail, log=log))
        return text

    def py(self, *args):
        return [sys.executable, *args]


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def environment() -> dict:
    import torch
    cuda = torch.cuda.is_available()
    return dict(machine=platform.machine(), python=platform.python_version(),
                torch=torch.__version__,
                device=torch.cuda.get_device_name(0) if cuda else 'cpu',
                bf16=bool(cuda and torch.cuda.is_bf16_supported()))


def data_step(c: Check, name: str, dry: bool, full: bool) -> str:
    out = osp.join(c.work, name)
    size = ['--canvas', '128', '--digit-size', '12', '--instances', '2', '3',
            '--num-train', '16', '--num-val', '8', '--num-test', '8'] if dry else \
        ([] if full else ['--num-train', '640', '--num-val', '100', '--num-test', '200'])
    c.run(f'data {name}', c.py('tools/dataset_converters/make_digitbags.py', '--out', out,
                               '--no-progress', *size), timeout=300, need=30)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    c, dry = Check(args), args.dry_run
    env = environment()
    device = 'cpu' if dry else 'cuda'
    # on the CPU (dry run) the cuda tests are collected and skipped: wiring only
    c.run('tests on cuda', c.py('-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rs',
                                'tests/test_devices.py', '-k', 'cuda'), timeout=240)
    data = data_step(c, 'digitbags_short', dry, full=False)
    config = 'tests/data/tiny_digitbags.py' if dry else 'configs/gattn_digitbags.py'
    roots = [f'{k}_dataloader.dataset.data_root={data}' for k in ('train', 'val', 'test')]
    workers = [] if dry else [f'{k}_dataloader.num_workers=8' for k in ('train', 'val')]
    amp = [] if dry else ['--amp']
    dtype = ['optim_wrapper.dtype=bfloat16'] if env['bf16'] else []
    c.run('train (AMP)' if not dry else 'train', c.py(
        'tools/train.py', config, '--work-dir', osp.join(c.work, 'amp'), *amp,
        '--cfg-options', *roots, *workers, *dtype,
        f'train_cfg.max_epochs={1 if dry else 15}', f'train_cfg.val_interval={1 if dry else 15}'),
        timeout=240)
    c.env['PORT'] = str(free_port())
    c.run('dist_train.sh, 1 process', ['bash', 'tools/dist_train.sh', config, '1',
                                        '--work-dir', osp.join(c.work, 'dist'), '--cfg-options',
                                        *roots, 'train_cfg.max_epochs=1'], timeout=180)
    sizes = [['--quick', '--sizes', '128']] if dry else [
        ['--sizes', '512', '1024', '2048', '4096', '8192', '--batch-size', '1'],
        ['--sizes', '512', '1024', '2048', '--batch-size', '32']]
    for i, extra in enumerate(sizes):
        c.run(f'resolution benchmark {" ".join(extra)}', c.py(
            'tools/benchmarks/resolution.py', '--device', device, '--repeats', '5',
            '--out-dir', args.out_dir, '--tag', f'{"cpu_dry" if dry else "gpu"}_{i}', *extra),
            timeout=300, keep=r'^wrote ')
    if not dry:
        full = data_step(c, 'digitbags', False, full=True)
        roots = [f'{k}_dataloader.dataset.data_root={full}' for k in ('train', 'val', 'test')]
        c.run('default recipe, 20 epochs', c.py(
            'tools/train.py', config, '--work-dir', osp.join(c.work, 'recipe'),
            '--cfg-options', *roots, *workers), timeout=600, need=200)
        last = osp.join(c.work, 'recipe', 'last_checkpoint')
        if osp.isfile(last):
            c.run('default recipe, test', c.py(
                'tools/test.py', config, open(last).read().strip(), '--work-dir',
                osp.join(c.work, 'recipe'), '--cfg-options', *roots), timeout=120, need=20)
    report(args.out_dir, env, c.steps, time.time() - c.start, dry)
    return 0 if all(s['status'] in ('ok', 'skipped (budget)') for s in c.steps) else 1


def report(out_dir, env, steps, seconds, dry) -> None:
    result = dict(environment=env, dry_run=dry, seconds=round(seconds, 1), steps=steps)
    with open(osp.join(out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(result, f, indent=1)
    lines = [f'GPU check on {env["device"]} (torch {env["torch"]}, bf16 {env["bf16"]})'
             f'{", dry run on the CPU" if dry else ""}: {seconds:.0f} s in all', '',
             '| step | status | seconds | what it printed |', '| --- | --- | --- | --- |']
    for s in steps:
        detail = '<br>'.join(d.replace('|', '/') for d in s.get('detail', []))
        lines.append(f'| {s["step"]} | {s["status"]} | {s["seconds"]} | {detail} |')
    with open(osp.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    sys.exit(main())
