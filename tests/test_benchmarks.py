"""The benchmark scripts run end to end in --quick mode and write sane JSON."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def positive_finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_resolution_quick(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/benchmarks/resolution.py', '--quick',
                           '--out-dir', str(tmp_path), '--device', 'cpu'],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.load(open(tmp_path / 'resolution_cpu_quick.json'))
    assert result['device'] == 'cpu' and len(result['rows']) == 2
    for row in result['rows']:
        assert set(row) == {'size', 'sampler_s', 'sampler_share_pct',
                            'sampler_share_profiler_pct', 'gattn_train_s', 'gattn_infer_s',
                            'gattn_peak_mem_mb', 'full_res_train_s', 'full_res_infer_s',
                            'full_res_peak_mem_mb'}
        assert all(positive_finite(v) for v in row.values())
    assert (tmp_path / 'resolution_cpu_quick.png').stat().st_size > 1000
    assert '| 128² |' in (tmp_path / 'resolution_cpu_quick.md').read_text()


def test_robustness_quick(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/benchmarks/robustness.py', '--quick',
                           '--variants', 'target3_data_seed1',
                           '--work-dir', str(tmp_path / 'work'), '--out-dir', str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.load(open(tmp_path / 'robustness_digitbags_quick.json'))
    row, = result['rows']
    assert row['variant'] == 'target3_data_seed1' and row['train_seed'] == 0
    assert 0 <= row['accuracy'] <= 100 and positive_finite(row['train_s'])
    assert [epoch for epoch, _ in row['val_curve']] == [1]
    meta = json.load(open(tmp_path / 'work' / 'data_quick' / 'target3_data_seed1' /
                          'meta.json'))
    assert meta['target'] == 3 and meta['seed'] == 1
    assert '| target3_data_seed1 |' in (tmp_path / 'robustness_digitbags_quick.md').read_text()
    # --reuse tests the same checkpoint again, no training; train time kept
    train_log = tmp_path / 'work' / 'target3_data_seed1' / 'train.log'
    mtime = train_log.stat().st_mtime
    again = subprocess.run([sys.executable, 'tools/benchmarks/robustness.py', '--quick',
                            '--reuse', '--variants', 'target3_data_seed1',
                            '--work-dir', str(tmp_path / 'work'), '--out-dir', str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    reused, = json.load(open(tmp_path / 'robustness_digitbags_quick.json'))['rows']
    assert train_log.stat().st_mtime == mtime
    assert reused['train_s'] == row['train_s'] and reused['accuracy'] == row['accuracy']
    assert len(json.load(open(tmp_path / 'robustness_digitbags_quick.json'))['commands']) == 2
    missing = subprocess.run([sys.executable, 'tools/benchmarks/robustness.py', '--quick',
                              '--reuse', '--variants', 'default_train_seed1',
                              '--work-dir', str(tmp_path / 'work'), '--out-dir', str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and 'no last_checkpoint' in missing.stderr
    # without its recorded train time a checkpoint is not reused (no stale number)
    (tmp_path / 'work' / 'target3_data_seed1' / 'train_done.json').unlink()
    untimed = subprocess.run([sys.executable, 'tools/benchmarks/robustness.py', '--quick',
                              '--reuse', '--variants', 'target3_data_seed1',
                              '--work-dir', str(tmp_path / 'work'), '--out-dir', str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert untimed.returncode != 0 and 'no train_done.json' in untimed.stderr


def test_committed_tables_are_their_json_and_the_docs_hold_them():
    """Every committed results table (benchmarks/results/, and the retired runs kept in
    benchmarks/experiments/results/) is the markdown its benchmark script writes from
    the committed JSON, and the docs (update_docs.DOCS) hold every table as it is."""
    import glob

    from tools.benchmarks import accuracy, resolution, robustness, slides, update_docs
    render = {'accuracy': accuracy.markdown, 'robustness': robustness.markdown,
              'slides': slides.table,
              'resolution': lambda r: resolution.markdown(r['rows'], r['machine'])}
    checked = 0
    for path in sorted(glob.glob(osp.join(ROOT, 'benchmarks', 'results', '*.json')) +
                       glob.glob(osp.join(ROOT, 'benchmarks', 'experiments', 'results', '*.json'))):
        md = path[:-len('.json')] + '.md'
        kind = osp.basename(path).split('_')[0].split('.')[0]
        if not osp.isfile(md) or kind not in render:
            continue
        rebuilt = render[kind](json.load(open(path)))
        assert rebuilt.strip() == open(md).read().strip(), md
        checked += 1
    assert checked >= 15
    assert update_docs.main(['--check']) == 0


def test_error_breakdown_reads_test_predictions_and_runs_no_pickled_code(tmp_path, capsys):
    """tools/test.py's predictions pickle (what DumpResults writes: tensors, arrays,
    containers) is read; a pickle holding any other object is refused, naming the file."""
    import importlib.util

    import numpy as np
    import torch
    from mmengine.fileio import dump
    spec = importlib.util.spec_from_file_location(
        'error_breakdown', osp.join(ROOT, 'benchmarks', 'experiments', 'probes',
                                  'error_breakdown.py'))
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    bag = dict(img_path='bag_0.png', gt_label=torch.tensor([1]), pred_label=torch.tensor([0]),
               pred_score=torch.tensor([0.7, 0.3]), gt_digits=np.array([9, 3]),
               gt_bboxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30]]),
               boxes=torch.tensor([[0., 0., 12., 12.]]))
    dump([bag], str(tmp_path / 'pred.pkl'))
    probe.main([str(tmp_path / 'pred.pkl')])
    out = capsys.readouterr().out
    assert 'bag_0.png: label 1, predicted 0' in out and 'target covered [True]' in out
    assert '1 bags: 1 errors, 0 false positives, 1 false negatives' in out

    class Hostile:
        def __reduce__(self):
            return (open, (str(tmp_path / 'pwned'), 'w'))
    dump([dict(bag, meta=Hostile())], str(tmp_path / 'evil.pkl'))
    with pytest.raises(SystemExit, match=r'evil.pkl: not a predictions pickle .*io.open '
                                         r'is not a tensor'):
        probe.main([str(tmp_path / 'evil.pkl')])
    assert not (tmp_path / 'pwned').exists()
