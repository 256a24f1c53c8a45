"""Quiet tools that fit the machine: dataloader workers and pin_memory from the
machine, no upstream warning a user cannot act on, mmengine's startup dumps behind
--show-config, a progress bar on a terminal only, the TensorBoard backend."""
import glob
import io
import logging
import os
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from gattn_mm.utils import available_cores, set_dataloader_defaults

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')


def loaders(workers, **extra):
    return Config({f'{k}_dataloader': dict(batch_size=2, num_workers=workers, **extra)
                   for k in ('train', 'val', 'test')})


def test_dataloaders_fit_the_machine(monkeypatch):
    import gattn_mm.utils.runner_cfg as runner_cfg
    cores = available_cores()
    monkeypatch.setattr(runner_cfg, 'has_accelerator', lambda: False)
    cfg = loaders(cores + 3, pin_memory=True)
    set_dataloader_defaults(cfg)
    for k in ('train', 'val', 'test'):
        loader = cfg[f'{k}_dataloader']
        assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == \
            (cores, False, True)
    cfg = loaders(0)
    set_dataloader_defaults(cfg)
    assert (cfg.train_dataloader.num_workers, cfg.train_dataloader.persistent_workers) == \
        (0, False)
    monkeypatch.setattr(runner_cfg, 'has_accelerator', lambda: True)
    cfg = loaders(1)
    set_dataloader_defaults(cfg)
    assert cfg.train_dataloader.pin_memory is True
    cfg = loaders(1)
    set_dataloader_defaults(cfg, no_pin_memory=True)
    assert cfg.train_dataloader.pin_memory is False


# a warning line of Python's warnings module or of mmengine's logger
WARNING_LINE = re.compile(r'Warning\b|\bWARNING\b')


def run(*args):
    env = dict(os.environ, TTY_COMPATIBLE='0', PYTHONWARNINGS='')  # a pipe, as in CI
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_train_and_test_on_this_machine_print_no_upstream_warning(tmp_path, tiny_digitbags):
    """A config asking for more workers than cores, pin_memory on a CPU, mmcv-lite,
    mmengine's CheckpointHook (its FileClient notes): no warning line. The console
    leaves out mmengine's environment, config and hook dumps (the log file keeps
    them) unless --show-config; in a pipe no progress bar is drawn."""
    work = tmp_path / 'work'
    data = [f'{k}_dataloader.dataset.data_root={tiny_digitbags}' for k in ('train', 'val', 'test')]
    workers = available_cores() + 2
    train = run('tools/train.py', CFG, '--work-dir', str(work), '--cfg-options',
                'train_cfg.max_epochs=1', f'train_dataloader.num_workers={workers}',
                'train_dataloader.pin_memory=True', *data)
    assert train.returncode == 0, train.stderr[-3000:]
    console = train.stdout + train.stderr
    assert not [x for x in console.splitlines() if WARNING_LINE.search(x)], console[-3000:]
    assert 'Config:' not in console and 'System environment' not in console
    assert 'Hooks will be executed' not in console and '━' not in console
    assert f'config: {work / "tiny_digitbags.py"} (the environment, the config and the ' \
        f'hooks: --show-config' in console and 'Epoch(train) [1][' in console
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    assert 'Config:' in log and 'System environment' in log
    assert 'Hooks will be executed' in log and 'FileClient' not in log

    test = run('tools/test.py', CFG, str(work / 'epoch_1.pth'), '--work-dir',
               str(tmp_path / 'test'), '--show-config', '--cfg-options',
               f'test_dataloader.num_workers={workers}', *data)
    assert test.returncode == 0, test.stderr[-3000:]
    console = test.stdout + test.stderr
    assert not [x for x in console.splitlines() if WARNING_LINE.search(x)], console[-3000:]
    assert 'Config:' in console and 'Hooks will be executed' in console
    assert 'accuracy/top1' in console


def fake_runner(stream):
    logger = logging.Logger('fake')
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    return SimpleNamespace(logger=logger, train_loop=object(), epoch=0, max_epochs=3,
                           train_dataloader=[0, 1, 2], val_dataloader=[0]), handler


@pytest.mark.parametrize('terminal', ['1', '0'])
def test_progress_bar_on_a_terminal_only(monkeypatch, capsys, terminal):
    """On a terminal the bar shows the epoch and mmengine's console handler prints
    above it (its stream is rich's while the bar is shown, then given back); in a
    pipe the hook draws nothing and leaves the handler alone."""
    from gattn_mm.engine.hooks import ProgressBarHook
    monkeypatch.setenv('TTY_COMPATIBLE', terminal)
    stream = io.StringIO()
    runner, handler = fake_runner(stream)
    hook = ProgressBarHook()
    hook.before_train_epoch(runner)
    during = handler.stream
    for i in range(3):
        runner.logger.info(f'line {i}')
        hook.after_train_iter(runner, i)
    hook.before_val_epoch(runner)
    hook.after_val_iter(runner, 0)
    hook.after_val_epoch(runner)
    hook.after_train_epoch(runner)
    hook.after_run(runner)
    out = capsys.readouterr().out
    assert handler.stream is stream
    if terminal == '1':
        assert during is not stream and 'epoch 1/3' in out
        assert [f'line {i}' in out for i in range(3)] == [True] * 3
        assert stream.getvalue() == ''
    else:
        assert during is stream and out == ''
        assert stream.getvalue() == 'line 0\nline 1\nline 2\n'


def test_tensorboard_backend(tmp_path):
    """docs/tools.md: TensorBoard is mmengine's TensorboardVisBackend (the
    `tensorboard` extra), chosen in the config's visualizer."""
    pytest.importorskip('tensorboard')
    from mmengine.visualization import Visualizer

    import gattn_mm  # noqa: F401
    from mmpretrain.registry import VISUALIZERS
    vis = VISUALIZERS.build(dict(type='UniversalVisualizer', name='tb_test',
                                 vis_backends=[dict(type='TensorboardVisBackend')],
                                 save_dir=str(tmp_path)))
    assert isinstance(vis, Visualizer)
    vis.add_scalars({'loss': 1.0}, step=1)
    vis.close()
    assert glob.glob(str(tmp_path / '**' / 'events.out.tfevents.*'), recursive=True)


@pytest.mark.parametrize('tool, args', [
    ('dataset_converters/make_synthcells.py', ['--out', 'unused', '--cell-size', '8', '10']),
    ('download.py', ['no_such_model', '--dest', 'unused']),
    ('publish_model.py', ['no_such.pth', 'unused.pth']),
])
def test_every_tool_imports_mmpretrain_quietly(tool, args):
    """Tools beyond train/test/infer (converters, download, publish) import mmpretrain
    too: their refusal is the error line alone, no mmcv-lite warning above it."""
    proc = run(f'tools/{tool}', *args)
    assert proc.returncode != 0 and 'error' in proc.stderr, proc.stderr[-2000:]
    assert not [x for x in proc.stderr.splitlines() if WARNING_LINE.search(x)], proc.stderr
