"""The ablation benchmark on the IPS tasks of Megapixel digits: the multi-label task
runs end to end in --quick mode and keeps mmpretrain's multi-label scores (its own
file, so pytest-xdist's loadfile runs it beside the other benchmarks)."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
import accuracy  # noqa: E402


def test_accuracy_quick_megapixel_multi(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/benchmarks/accuracy.py', '--quick',
                           '--benchmark', 'megapixel_multi', '--models', 'gattn',
                           '--work-dir', str(tmp_path / 'work'), '--out-dir', str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    meta = json.load(open(tmp_path / 'work' / 'megapixel_multi_quick' / 'meta.json'))
    assert meta['multi_label'] is True
    # the best checkpoint is kept by mAP, not by the first metric reported (precision)
    assert (tmp_path / 'work' / 'gattn' / 'best_multi-label_mAP_epoch_1.pth').is_file()
    result = json.load(open(tmp_path / 'accuracy_megapixel_multi_quick.json'))
    row, = result['rows']
    assert row['config'] == 'configs/gattn_megapixel_multi.py'
    assert 'accuracy' not in row  # no top-1 for multi-label data
    for key in ('f1_macro', 'f1_micro', 'mAP'):
        assert 0 <= row[key] <= 100, (key, row[key])
    table = (tmp_path / 'accuracy_megapixel_multi_quick.md').read_text()
    assert '| test F1 macro / micro, mAP (%) |' in table
    assert f"| {row['f1_macro']:.2f} / {row['f1_micro']:.2f}, {row['mAP']:.2f} |" in table


def test_task_benchmarks_generate_their_task():
    for task in ('max', 'multi'):
        full, quick = accuracy.DATA[f'megapixel_{task}']
        assert full == ['--preset', 'megapixel', '--task', task]
        assert quick[-2:] == ['--task', task] and '--num-train' in quick
    args = accuracy.parse_args(['--benchmark', 'megapixel_max', '--models', 'gattn'])
    assert args.data_root == 'data/megapixel_max'


def test_models_without_a_config_are_refused(capsys):
    with pytest.raises(SystemExit):
        accuracy.parse_args(['--benchmark', 'megapixel_max', '--models', 'gattn',
                             'random_attention'])
    err = capsys.readouterr().err
    assert '--benchmark megapixel_max has no config for --models random_attention' in err
    assert 'configs/baselines/megapixel_max_random_attention.py' in err


def test_epochs_count_in_the_loop_of_each_config(tmp_path):
    """--epochs reaches an epoch-based config as max_epochs and the iteration-based
    Megapixel full-resolution baseline as the iterations of as many passes."""
    (tmp_path / 'train.txt').write_text('a.png 1\nb.png 2\n\nc.png 3\n' * 10)  # 30 images
    args = accuracy.parse_args(['--benchmark', 'megapixel', '--epochs', '3',
                                '--data-root', str(tmp_path)])
    assert accuracy.epoch_opts(args, 'configs/gattn_megapixel.py') == [
        'train_cfg.max_epochs=3']
    # batch 16: 2 iterations per pass over 30 images
    assert accuracy.epoch_opts(args, 'configs/baselines/megapixel_full_res.py') == [
        'train_cfg.max_iters=6']
    args.epochs = None
    assert accuracy.epoch_opts(args, 'configs/baselines/megapixel_full_res.py') == []


def test_rows_of_gattns_checkpoint_never_retrain_it(tmp_path, monkeypatch):
    """gattn is trained once per run, first, and rows that only test its checkpoint
    reuse its finished training (no retraining into the same work dir without
    --reuse) if the same command made it; full_res gets this run's gattn time."""
    calls = []

    def fake_run(cmd, log_path):
        calls.append(cmd[1:])
        work = cmd[cmd.index('--work-dir') + 1]
        if cmd[1] == 'tools/train.py':
            with open(osp.join(work, 'last_checkpoint'), 'w') as f:
                f.write(osp.join(work, 'epoch_1.pth'))
        else:
            with open(cmd[cmd.index('--out') + 1], 'w') as f:
                json.dump({'accuracy/top1': 50.0}, f)
        return 100.0 * len(calls), 10.0  # each run takes longer: times tell runs apart

    def tools():
        return [c[0] for c in calls]

    monkeypatch.setattr(accuracy, 'run_measured', fake_run)
    monkeypatch.setattr(accuracy, 'ensure_data', lambda args: None)
    common = ['--benchmark', 'megapixel', '--work-dir', str(tmp_path / 'work'),
              '--out-dir', str(tmp_path)]
    accuracy.main(common + ['--models', 'instance_head', 'gattn'])
    assert tools() == ['tools/train.py', 'tools/test.py', 'tools/test.py']
    calls.clear()
    result = accuracy.main(common + ['--models', 'fused_head', 'random_attention'])
    assert tools() == ['tools/test.py', 'tools/test.py']
    assert [r['model'] for r in result['rows']] == ['gattn', 'instance_head', 'fused_head',
                                                    'random_attention']
    calls.clear()
    with pytest.raises(SystemExit, match=r'train_done.json: made by .* not by this run'):
        accuracy.main(common + ['--models', 'fused_head', '--seed', '1'])  # another training
    assert calls == []
    # asked for without --reuse: retrained, before full_res, whose budget is its new time
    result = accuracy.main(common + ['--models', 'full_res', 'gattn'])
    assert tools() == ['tools/train.py', 'tools/test.py', 'tools/train.py', 'tools/test.py']
    assert result['rows'][0]['train_s'] == 100.0
    assert 'custom_hooks.1.seconds=100' in calls[2]


def test_best_checkpoint_is_the_save_best_file(tmp_path):
    """``--checkpoint best`` tests the one ``best_*.pth`` beside the last checkpoint,
    and refuses, naming the folder, when there is none or several."""
    last = tmp_path / 'epoch_12.pth'
    last.write_bytes(b'')
    with pytest.raises(SystemExit, match=re.escape(str(tmp_path))):
        accuracy.best_checkpoint(str(last))
    (tmp_path / 'best_accuracy_top1_epoch_9.pth').write_bytes(b'')
    assert accuracy.best_checkpoint(str(last)) == str(tmp_path / 'best_accuracy_top1_epoch_9.pth')
    (tmp_path / 'best_accuracy_top1_epoch_10.pth').write_bytes(b'')
    with pytest.raises(SystemExit, match='expected one best'):
        accuracy.best_checkpoint(str(last))


def test_cfg_options_reach_every_training_and_test(tmp_path, monkeypatch):
    """--cfg-options (an ablation of the shipped config) is passed to tools/train.py
    and tools/test.py of every model, after the data options, and recorded in the
    results file's command."""
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'meta.json').write_text('{}')
    ran = []

    def fake_run(cmd, log):
        ran.append(cmd)
        i = cmd.index('--work-dir') + 1
        work = osp.join(ROOT, cmd[i])
        if cmd[1] == 'tools/train.py':
            ckpt = osp.join(cmd[i], 'epoch_1.pth')
            with open(osp.join(work, 'last_checkpoint'), 'w') as f:
                f.write(ckpt)
        else:
            with open(osp.join(ROOT, cmd[cmd.index('--out') + 1]), 'w') as f:
                json.dump({'accuracy/top1': 50.0}, f)
        return 1.0, 10.0

    monkeypatch.setattr(accuracy, 'run_measured', fake_run)
    result = accuracy.main([
        '--benchmark', 'digitbags', '--data-root', str(data), '--models', 'gattn',
        'contrast_attention', '--work-dir', str(tmp_path / 'work'), '--out-dir',
        str(tmp_path), '--cfg-options', 'optim_wrapper.optimizer.lr=5e-4',
        'model.sampler.test_cfg.num_instances=8'])
    assert [c[1] for c in ran] == ['tools/train.py', 'tools/test.py', 'tools/test.py']
    for cmd in ran:
        opts = cmd[cmd.index('--cfg-options') + 1:]
        assert opts[-2:] == ['optim_wrapper.optimizer.lr=5e-4',
                             'model.sampler.test_cfg.num_instances=8'], cmd
    assert '--cfg-options optim_wrapper.optimizer.lr=5e-4' in result['command']
    assert [r['accuracy'] for r in result['rows']] == [50.0, 50.0]


def test_malformed_cfg_options_are_refused_before_any_work(capsys):
    with pytest.raises(SystemExit):
        accuracy.parse_args(['--benchmark', 'digitbags', '--cfg-options', 'a.b=1', 'lr'])
    assert '--cfg-options lr: expected KEY=VALUE' in capsys.readouterr().err
