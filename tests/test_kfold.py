"""tools/benchmarks/kfold.py: each fold's train and test commands select that fold on
the three datasets (checked by building BreakHis's datasets of a tiny tree from
them), and the folds' test metrics become mean ± sd; training and testing are
replaced by fakes (no learning here)."""
import argparse
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config, DictAction
from test_datasets import make_breakhis

import gattn_mm  # noqa: F401
from tools.benchmarks import kfold

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'gattn_breakhis.py')


def options_of(cmd):
    """The ``--cfg-options`` of a tool command as a dict."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args, _ = parser.parse_known_args(cmd[cmd.index('--cfg-options'):])
    return args.cfg_options


def patients(cfg, split):
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    return {d['patient_id'] for d in dataset.load_data_list()}


def test_dry_run_commands_select_each_fold_on_the_three_datasets(tmp_path, capsys):
    make_breakhis(str(tmp_path / 'bh'))  # 12 patients, 6 benign
    data = [f'{s}_dataloader.dataset.data_root={tmp_path / "bh"}' for s in kfold.SPLITS]
    work = tmp_path / 'kf'
    assert kfold.main([CONFIG, '--folds', '3', '--work-dir', str(work), '--dry-run',
                       '--cfg-options', 'train_cfg.max_epochs=1', *data]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and not work.exists()  # train + test per fold, nothing run
    tested = []
    for fold in range(3):
        train, test = (line.split() for line in lines[2 * fold:2 * fold + 2])
        assert train[1].endswith('tools/train.py') and test[1].endswith('tools/test.py')
        assert train[train.index('--work-dir') + 1] == str(work / f'fold_{fold}')
        assert test[test.index('--out') + 1] == str(work / f'fold_{fold}' /
                                                    'test_metrics.json')
        for cmd in (train, test):
            opts = options_of(cmd)
            assert opts['train_cfg.max_epochs'] == 1
            for split in kfold.SPLITS:
                assert opts[f'{split}_dataloader.dataset.fold'] == fold
                assert opts[f'{split}_dataloader.dataset.num_folds'] == 3
        cfg = Config.fromfile(CONFIG)
        cfg.merge_from_dict(options_of(test))
        split_patients = {s: patients(cfg, s) for s in kfold.SPLITS}
        assert not split_patients['train'] & split_patients['test']
        assert not split_patients['val'] & split_patients['test']
        tested.append(split_patients['test'])
    assert len(set().union(*tested)) == sum(map(len, tested)) == 12  # each tested once


def fake_tools(values):
    """A ``run_tool`` that 'trains' (writes last_checkpoint) and 'tests' (writes the
    metrics of ``values[fold]``), recording the commands."""
    calls = []

    def run_tool(cmd, log_path):
        calls.append(cmd)
        work = cmd[cmd.index('--work-dir') + 1]
        fold = options_of(cmd)['test_dataloader.dataset.fold']
        if cmd[1].endswith('train.py'):
            open(osp.join(work, 'last_checkpoint'), 'w').write(
                osp.join(work, 'epoch_1.pth'))
        else:
            json.dump(values[fold], open(cmd[cmd.index('--out') + 1], 'w'))
    return run_tool, calls


def test_mean_and_sd_per_metric_with_undefined_folds_left_out(tmp_path, monkeypatch,
                                                               capsys):
    values = [{'accuracy/top1': 80.0, 'patient/auc': 0.5},
              {'accuracy/top1': 90.0, 'patient/auc': float('nan')},
              {'accuracy/top1': 100.0, 'patient/auc': 0.7}]
    run_tool, calls = fake_tools(values)
    monkeypatch.setattr(kfold, 'run_tool', run_tool)
    monkeypatch.setattr(kfold, 'check_config', lambda *a: None)
    work = tmp_path / 'kf'
    assert kfold.main([CONFIG, '--folds', '3', '--work-dir', str(work)]) == 0
    assert [c[1].rsplit('/', 1)[1] for c in calls] == ['train.py', 'test.py'] * 3
    for fold in range(3):  # each fold's test runs on that fold's last checkpoint
        assert calls[2 * fold + 1][3] == str(work / f'fold_{fold}' / 'epoch_1.pth')
    report = json.loads((work / 'kfold.json').read_text(),
                        parse_constant=lambda c: pytest.fail(f'{c} in kfold.json'))
    assert report['folds'] == 3 and report['per_fold'][1]['metrics']['patient/auc'] is None
    acc, auc = report['summary']['accuracy/top1'], report['summary']['patient/auc']
    assert acc == dict(mean=90.0, sd=pytest.approx(10.0), folds=[0, 1, 2], left_out=[])
    assert auc['mean'] == pytest.approx(0.6) and auc['sd'] == pytest.approx(0.1414, abs=1e-4)
    assert auc['folds'] == [0, 2] and auc['left_out'] == [1]
    out = capsys.readouterr().out
    assert 'accuracy/top1  90 ± 10  (3 of 3 folds)' in out
    assert 'patient/auc    0.6 ± 0.141  (2 of 3 folds; left out: fold 1)' in out


def test_a_config_or_options_without_folds_are_refused(tmp_path, capsys):
    digitbags = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
    with pytest.raises(SystemExit, match=r'train_dataloader.dataset \(DigitBags\) has no '
                                         r'fold or num_folds'):
        kfold.main([digitbags, '--folds', '3', '--dry-run'])
    for argv, said in ((['--folds', '2'], '--folds must be >= 3'),
                       (['--folds', '3', '--cfg-options', 'val_dataloader.dataset.fold=1'],
                        'fold and num_folds are set by this tool')):
        with pytest.raises(SystemExit):
            kfold.main([CONFIG, *argv, '--dry-run'])
        assert said in capsys.readouterr().err
    with pytest.raises(SystemExit, match='0 best_.*pth in'):
        kfold.checkpoint_of(str(tmp_path), 'best')


def test_a_failing_fold_ends_with_its_log_tail(tmp_path):
    log = tmp_path / 'train.log'
    with pytest.raises(SystemExit, match=r'(?s)boom\n.*exit 3\); its log: .*train\.log'):
        kfold.run_tool([sys.executable, '-c', 'import sys; print("boom"); sys.exit(3)'],
                       str(log))
    assert log.read_text() == 'boom\n'
