import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
# One intra-op thread per process unless told otherwise: pytest-xdist runs a worker per
# core and most tests start tool subprocesses, so every core is already busy; two
# OpenMP threads per process then wait on each other at every small op (a tiny
# training step took 5 s instead of 0.07 s on 2 busy cores). Subprocesses inherit it.
os.environ.setdefault('OMP_NUM_THREADS', '1')


def make_tiny_digitbags(out, seed=0, num=(16, 8, 8)):
    from gattn_mm.datasets.digitbags_generator import DigitBagsSpec, generate
    spec = DigitBagsSpec(canvas=128, digit_size=12, instances=(2, 3), target=9,
                         num=dict(train=num[0], val=num[1], test=num[2]), seed=seed)
    generate(str(out), spec, progress=False)
    return str(out)


@pytest.fixture(autouse=True)
def unnested_mmpretrain_progress():
    """mmpretrain's inferencers draw their progress with one module-level rich Live;
    started inside another Live (tools/visualize_attention.py's Progress, run
    in-process by a test) it is marked nested and rich never clears that mark, so the
    next test's inferencer (outside any Live) refreshes it from a thread that recurses
    until it dies (PytestUnhandledThreadExceptionWarning). A tool's process ends
    there; in the test process the mark is cleared after each test."""
    yield
    progress = sys.modules.get('mmpretrain.utils.progress')
    live = getattr(progress, 'global_live', None)
    if live is not None and not getattr(live, '_started', True):
        live._nested = False


def shared(tmp_path_factory, name, make):
    """``make(folder)`` run once per test run into a new folder ``name``, and its value
    (JSON) given to every test: under pytest-xdist the workers share it (the first to
    ask builds it while the others wait on a lock) instead of building one each."""
    import json
    import shutil

    from filelock import FileLock
    if not os.environ.get('PYTEST_XDIST_WORKER'):
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent  # this run's, above the workers' own
    folder, done = root / name, root / f'{name}.json'
    with FileLock(str(root / f'{name}.lock')):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a failed build's leftovers
            folder.mkdir()
            done.write_text(json.dumps(make(folder)))
        return json.loads(done.read_text())


@pytest.fixture(scope='session')
def tiny_digitbags(tmp_path_factory):
    return shared(tmp_path_factory, 'digitbags', make_tiny_digitbags)


@pytest.fixture(scope='session')
def root():
    return ROOT


def train_tiny_checkpoint(work, data_root):
    """Train tests/data/tiny_digitbags.py on ``data_root`` for one epoch with
    tools/train.py into ``work``: (its config, with the data root, dumped there; the
    checkpoint)."""
    import subprocess
    cfg = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')
    opts = [f'{k}_dataloader.dataset.data_root={data_root}' for k in ('train', 'val', 'test')]
    proc = subprocess.run([sys.executable, 'tools/train.py', cfg, '--work-dir', str(work),
                           '--cfg-options', 'train_cfg.max_epochs=1', *opts],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    from mmengine.config import Config
    config = Config.fromfile(cfg)
    for k in ('train', 'val', 'test'):
        config[f'{k}_dataloader'].dataset.data_root = data_root
    dumped = str(work / 'config.py')
    config.dump(dumped)
    return dumped, str(work / 'epoch_1.pth')


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory, tiny_digitbags):
    """A tiny gattn model trained for one epoch with tools/train.py: (config, ckpt)."""
    return tuple(shared(tmp_path_factory, 'tiny_ckpt',
                        lambda work: train_tiny_checkpoint(work, tiny_digitbags)))
