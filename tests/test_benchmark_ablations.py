"""The ablation benchmark (tools/benchmarks/accuracy.py) runs end to end in --quick
mode on DigitBags and writes sane JSON (its own file, so pytest-xdist's loadfile runs
it beside the other benchmarks; Megapixel digits: test_benchmark_ablations_megapixel.py)."""
import json
import math
import os.path as osp
import re
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def positive_finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def run_accuracy(tmp_path, benchmark, models):
    proc = subprocess.run([sys.executable, 'tools/benchmarks/accuracy.py', '--quick',
                           '--benchmark', benchmark, '--models', *models,
                           '--work-dir', str(tmp_path / 'work'), '--out-dir', str(tmp_path),
                           '--tag', 'all'],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.load(open(tmp_path / f'accuracy_{benchmark}_all_quick.json'))
    rows = {r['model']: r for r in result['rows']}
    assert set(rows) == set(models)
    for r in rows.values():
        test_only = r['model'] in ('instance_head', 'fused_head', 'contrast_attention',
                                   'random_attention')
        keys = ('test_s', 'test_peak_mb') if test_only else (
            'train_s', 'test_s', 'train_peak_mb', 'test_peak_mb')
        for key in keys:
            assert positive_finite(r[key]), (r['model'], key, r[key])
        assert 0 <= r['accuracy'] <= 100
    return rows, (tmp_path / f'accuracy_{benchmark}_all_quick.md').read_text()


def test_accuracy_quick_digitbags(tmp_path):
    rows, table = run_accuracy(tmp_path, 'digitbags', ['gattn', 'random_attention',
                                                       'full_res'])
    for key in ('target_recall', 'box_precision', 'pointing_game', 'pointing_baseline'):
        assert key in rows['gattn'] and key in rows['random_attention']
    # the ablation reads gattn's checkpoint; the baseline had gattn's time as budget
    assert rows['random_attention']['checkpoint'] == rows['gattn']['checkpoint']
    assert rows['random_attention']['train_s'] is None
    assert 'custom_hooks.1.seconds=' in open(
        osp.join(tmp_path, 'work', 'full_res', 'train_done.json')).read()
    # the hook ran: the training's console (train.log) leaves mmengine's startup dumps
    # out and names the folder of its log file under the work dir, which keeps them
    console = open(osp.join(tmp_path, 'work', 'full_res', 'train.log')).read()
    log_dir = re.search(r'the log in (\S+)\)', console)
    assert log_dir, console[-2000:]
    log_dir = log_dir.group(1)
    assert osp.samefile(osp.dirname(log_dir), tmp_path / 'work' / 'full_res'), log_dir
    log = open(osp.join(log_dir, osp.basename(log_dir) + '.log')).read()
    assert f"dict(seconds={rows['gattn']['train_s']:.0f}, type='TimeBudgetHook')" in log
    hooks = log[log.index('Hooks will be executed in the following order'):]
    assert 'TimeBudgetHook' in hooks
    assert '| gattn |' in table and '| random_attention |' in table
