"""Native resolution against image side: inference time and peak memory of one image
of 2k to 64k pixels a side, read lazily from a pyramidal TIFF by the native path
(configs/gattn_digitbags_native.py) and decoded whole by the canvas path
(configs/gattn_digitbags.py, the image squeezed into a 512 px canvas), with the
published DigitBags weights.

Every image shows the same picture (the slide writer's layout, scaled: a 9, a 3 and
a 5 on a textured background), so every row must predict "has 9" with the 9 inside
the deciding box. Each (path, side) runs in a fresh process (tools/infer.py's code
path, GattnInferencer): peak RSS is that process's maximum resident set (including
PyTorch and the model, about 0.8 GB here); ``infer_s`` is the median of the timed
inference calls (``--repeats``; each reads the image anew), ``total_s`` the whole
command. The canvas path is not run where decoding the
image is over the reader's pixel budget (the row says so). Writes JSON, a markdown
table and a PNG plot."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import glob
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {'native': osp.join(ROOT, 'configs', 'gattn_digitbags_native.py'),
           'canvas': osp.join(ROOT, 'configs', 'gattn_digitbags.py')}


def checkpoint() -> str:
    return sorted(glob.glob(osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_*.pth')))[-1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--sizes', type=int, nargs='+', default=None,
                   help='image sides (default 2000 8000 32000 64000; --quick: 1500)')
    p.add_argument('--quick', action='store_true', help='small sizes (tests)')
    p.add_argument('--out-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--repeats', type=int, default=None,
                   help='timed inference calls per image, median reported (default 3; '
                   '--quick: 1)')
    p.add_argument('--child', nargs=4, metavar=('CONFIG', 'IMAGE', 'OUT', 'REPEATS'),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = args.sizes or ([1500] if args.quick else [2000, 8000, 32000, 64000])
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.repeats < 1:
        p.error(f'--repeats must be >= 1, got {args.repeats}')
    return args


def child(config: str, image: str, out: str, repeats: str) -> None:
    """One inference in this process: the timings and the prediction as JSON."""
    start = time.perf_counter()
    sys.path.insert(0, ROOT)
    import gattn_mm  # noqa: F401
    from gattn_mm.apis import GattnInferencer
    inferencer = GattnInferencer(config, pretrained=checkpoint(), device='cpu')
    loaded = time.perf_counter()
    times = []
    for _ in range(int(repeats)):  # the image is opened and read anew every time
        tick = time.perf_counter()
        result = inferencer(image)[0]
        times.append(time.perf_counter() - tick)
    with open(out, 'w') as f:
        json.dump(dict(load_s=loaded - start, infer_s=statistics.median(times),
                       peak_rss_mb=peak_rss_mb(),
                       pred_label=int(result['pred_label']),
                       pred_score=float(result['pred_score']),
                       deciding_box=[float(v) for v in
                                     result['boxes'][result['deciding_instances'][0]]]), f)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: since its exec, unlike ru_maxrss, which
    keeps the parent's pages of before the exec)."""
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    import resource  # not Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(config: str, image: str, work: str, repeats: int) -> dict:
    """Run :func:`child` in a fresh process: its result, wall time and peak RSS."""
    out = osp.join(work, 'child.json')
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, '--child', config, image, out,
                           str(repeats)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f'{config} on {image} failed:\n'
                           f'{proc.stderr.decode(errors="replace")[-3000:]}')
    row = json.load(open(out))
    row.update(total_s=time.perf_counter() - start)
    return row


def holds_digit(box, digit) -> bool:
    cx, cy = (digit[0] + digit[2]) / 2, (digit[1] + digit[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def run(args) -> dict:
    sys.path.insert(0, ROOT)
    import tifffile
    from gattn_mm.datasets.slide_writer import (DigitSlideSpec, digit_slide_array,
                                                write_digit_slide)
    from gattn_mm.datasets.transforms.loading import DEFAULT_MAX_PIXELS
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for side in args.sizes:
            spec = DigitSlideSpec(side=side)
            slide = osp.join(work, f'slide_{side}.tif')
            info = write_digit_slide(slide, spec)
            nine = info['boxes'][info['labels'].index(9)]
            files = {'native': slide}
            if side * side <= DEFAULT_MAX_PIXELS:  # the canvas path decodes it whole
                flat = osp.join(work, f'flat_{side}.tif')
                tifffile.imwrite(flat, digit_slide_array(spec), photometric='rgb',
                                 tile=(256, 256), compression='zlib', metadata=None)
                files['canvas'] = flat
            for path in ('native', 'canvas'):
                row = dict(path=path, side=side, file_mb=None)
                if path in files:
                    row['file_mb'] = round(osp.getsize(files[path]) / 2 ** 20, 1)
                    row.update(measure(CONFIGS[path], files[path], work, args.repeats))
                    row['nine_in_deciding_box'] = holds_digit(row['deciding_box'], nine)
                else:
                    row['skipped'] = (f'{side} x {side} is over the reader\'s pixel budget '
                                      f'({DEFAULT_MAX_PIXELS:,}); decoding it would take '
                                      f'{side * side * 3 / 2 ** 30:.1f} GiB as uint8')
                rows.append(row)
                print(json.dumps(row), flush=True)
            for name in os.listdir(work):
                os.remove(osp.join(work, name))
    return dict(machine=f'{platform.processor() or platform.machine()}, '
                        f'{os.cpu_count()} cores',
                command='python tools/benchmarks/slides.py' +
                (' --quick' if args.quick else '') +
                f' --sizes {" ".join(map(str, args.sizes))} --repeats {args.repeats}',
                rows=rows)


def table(result: dict) -> str:
    lines = [f'Measured on {result["machine"]} with `{result["command"]}`.', '',
             '| path | side (px) | file (MB) | prediction | 9 in deciding box | '
             'inference (s) | whole command (s) | peak RSS (MB) |',
             '|---|---|---|---|---|---|---|---|']
    for r in result['rows']:
        if 'skipped' in r:
            lines.append(f'| {r["path"]} | {r["side"]:,} | | not run: {r["skipped"]} '
                         f'| | | | |')
            continue
        pred = 'has 9' if r['pred_label'] == 1 else 'no 9'
        lines.append(f'| {r["path"]} | {r["side"]:,} | {r["file_mb"]} | {pred} '
                     f'({r["pred_score"]:.3f}) | {"yes" if r["nine_in_deciding_box"] else "no"}'
                     f' | {r["infer_s"]:.2f} | {r["total_s"]:.1f} | {r["peak_rss_mb"]:.0f} |')
    return '\n'.join(lines)


def plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name in ('native', 'canvas'):
        rows = [r for r in result['rows'] if r['path'] == name and 'skipped' not in r]
        sides = [r['side'] for r in rows]
        axes[0].plot(sides, [r['infer_s'] for r in rows], 'o-', label=name)
        axes[1].plot(sides, [r['peak_rss_mb'] for r in rows], 'o-', label=name)
    for ax, label in zip(axes, ('inference (s)', 'peak RSS (MB)')):
        ax.set_xscale('log')
        ax.set_xlabel('image side (px)')
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(*args.child)
    result = run(args)
    stem = osp.join(args.out_dir, 'slides_cpu' + ('_quick' if args.quick else ''))
    os.makedirs(args.out_dir, exist_ok=True)
    with open(stem + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    with open(stem + '.md', 'w') as f:
        f.write(table(result) + '\n')
    plot(result, stem + '.png')
    print(table(result))


if __name__ == '__main__':
    main()
