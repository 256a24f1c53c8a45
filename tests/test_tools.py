"""End-to-end runs of tools/train.py, tools/test.py and tools/dist_train.sh."""
import glob
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')


def data_opts(data_root):
    return [f'{k}_dataloader.dataset.data_root={data_root}' for k in ('train', 'val', 'test')]


def env():
    e = dict(os.environ)
    e['PYTHONPATH'] = os.pathsep.join([ROOT, osp.join(ROOT, 'tests', 'data'),
                                       e.get('PYTHONPATH', '')])
    e.setdefault('OMP_NUM_THREADS', '1')
    e['PYTHON'] = sys.executable
    return e


def run_tool(*args, timeout=300, check=True):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_train_kill_resume_test_and_safe_checkpoints(tmp_path, tiny_digitbags):
    work = tmp_path / 'work'
    cmd = [sys.executable, 'tools/train.py', CFG, '--work-dir', str(work), '--cfg-options',
           'train_cfg.max_epochs=4', *data_opts(tiny_digitbags)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    last = work / 'last_checkpoint'
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and 'epoch_2.pth' in last.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, f'training ended before the kill: {proc.stderr.read()[-3000:]}'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work / 'epoch_4.pth').exists()

    out = run_tool('tools/train.py', CFG, '--work-dir', str(work), '--resume',
                   '--cfg-options', 'train_cfg.max_epochs=4', *data_opts(tiny_digitbags))
    log = out.stdout + out.stderr
    assert 'resumed epoch: 2' in log or 'resumed epoch: 3' in log, log[-3000:]
    assert (work / 'epoch_4.pth').exists()

    ckpts = sorted(glob.glob(str(work / '*.pth')))
    assert ckpts
    for ckpt in ckpts:
        state = torch.load(ckpt, map_location='cpu', weights_only=True)
        assert 'state_dict' in state and 'message_hub' in state
    final = torch.load(work / 'epoch_4.pth', weights_only=True)
    assert final['meta']['epoch'] == 4

    # the resumed checkpoint tests, and fine-tunes (load_from), through the tools' main
    # in-process (the kill and the resume above are the command lines)
    import json

    from tools.test import main as test_tool
    from tools.train import main as train_tool
    test_tool([CFG, str(work / 'epoch_4.pth'), '--work-dir', str(tmp_path / 'test'), '--out',
               str(tmp_path / 'metrics.json'), '--out-item', 'metrics', '--cfg-options',
               *data_opts(tiny_digitbags)])
    metrics = json.load(open(tmp_path / 'metrics.json'))
    assert 0 <= metrics['accuracy/top1'] <= 100
    assert 'loc/target_recall' in metrics and 'loc/pointing_game' in metrics

    # load_from a checkpoint (fine-tuning) works too
    train_tool([CFG, '--work-dir', str(tmp_path / 'ft'), '--cfg-options',
                'train_cfg.max_epochs=1', f'load_from={work / "epoch_4.pth"}',
                *data_opts(tiny_digitbags)])
    assert (tmp_path / 'ft' / 'epoch_1.pth').is_file()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_malicious_checkpoint_is_refused(tmp_path, tiny_digitbags):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _Evil(marker)}, evil)
    out = run_tool('tools/test.py', CFG, str(evil), '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', *data_opts(tiny_digitbags), check=False)
    assert out.returncode != 0
    assert 'Refusing to load checkpoint' in out.stderr and 'evil.pth' in out.stderr
    assert 'system' in out.stderr
    assert not marker.exists()
    # and in-process through mmengine's loader, inside gattn-mm's runtime
    import gattn_mm  # noqa: F401
    from gattn_mm.runtime import UnsafeCheckpointError, safe_checkpoints
    from mmengine.runner import load_checkpoint
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        with safe_checkpoints():
            load_checkpoint(torch.nn.Linear(1, 1), str(evil))
    assert not marker.exists()


def test_dist_train_two_cpu_processes(tmp_path, tiny_digitbags):
    work = tmp_path / 'dist'
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(f"_base_ = ['{CFG}']\n"
                   "custom_imports = dict(imports=['gattn_mm', 'rank_marker'])\n"
                   "custom_hooks = [dict(type='SafeCheckpointHook'), dict(type='RankMarkerHook')]\n"
                   "default_hooks = dict(checkpoint=dict(save_best=None))\n")
    e = env()
    e['PORT'] = str(free_port())
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', str(work),
         '--cfg-options', 'train_cfg.max_epochs=1', *data_opts(tiny_digitbags)],
        cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert (work / 'rank0.done').exists() and (work / 'rank1.done').exists()
    # 16 bags, batch 4 per process, 2 processes -> 2 iterations per epoch
    assert (work / 'rank0.done').read_text() == '2'
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']
    torch.load(work / 'epoch_1.pth', weights_only=True)


USER_MODULE = '''
import torch.nn as nn
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS


@MODELS.register_module()
class TinyUserNet(BaseBackbone):
    def __init__(self, channels=24, init_cfg=None):
        super().__init__(init_cfg)
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, 2, 1))

    def forward(self, x):
        return (self.body(x),)
'''


def test_user_backbone_by_config(tmp_path, tiny_digitbags):
    (tmp_path / 'my_backbones.py').write_text(USER_MODULE)
    cfg = tmp_path / 'user_cfg.py'
    cfg.write_text(
        f"_base_ = ['{CFG}']\n"
        "custom_imports = dict(imports=['gattn_mm', 'my_backbones'], "
        "allow_failed_imports=False)\n"
        "model = dict(backbone=dict(_delete_=True, type='TinyUserNet', channels=24),\n"
        "             reader=dict(_delete_=True, type='TinyUserNet', channels=24),\n"
        "             neck=dict(in_channels=24), head=dict(in_channels=24, instance_channels=24),\n"
        "             instance_head=dict(in_channels=24))\n"
        "train_dataloader = dict(batch_size=8)\n")
    e = env()
    e['PYTHONPATH'] = str(tmp_path) + os.pathsep + e['PYTHONPATH']
    proc = subprocess.run([sys.executable, 'tools/train.py', str(cfg), '--work-dir',
                           str(tmp_path / 'w'), '--cfg-options', 'train_cfg.max_epochs=1',
                           *data_opts(tiny_digitbags)],
                          cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    log = proc.stdout + proc.stderr
    assert 'Epoch(train) [1][2/2]' in log
    assert (tmp_path / 'w' / 'epoch_1.pth').exists()


def test_convert_legacy_checkpoint_is_an_explicit_opt_in(tmp_path, capsys):
    import argparse

    import numpy as np

    from tools.model_converters.convert_legacy_checkpoint import main as convert
    linear = torch.nn.Linear(3, 2)
    legacy = tmp_path / 'legacy.pth'
    torch.save({'state_dict': linear.state_dict(),
                'meta': {'epoch': np.int64(7), 'cfg': argparse.Namespace(lr=0.1),
                         'hook': print},
                'optimizer': {'state': {}}}, legacy)
    from gattn_mm.runtime import UnsafeCheckpointError, safe_torch_load
    with pytest.raises(UnsafeCheckpointError, match='convert_legacy_checkpoint'):
        safe_torch_load(str(legacy))
    out = tmp_path / 'sub' / 'safe.pth'
    # without the flag: refused, the file named, nothing written
    assert convert([str(legacy), str(out)]) == 1
    assert 'legacy.pth' in capsys.readouterr().err and not out.parent.exists()
    # a malicious file without the flag: its code never runs
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {}, 'meta': _Evil(marker)}, tmp_path / 'evil.pth')
    assert convert([str(tmp_path / 'evil.pth'), str(out)]) == 1
    assert not marker.exists() and not out.parent.exists()
    # with the flag: a safe checkpoint with the same tensors and a plain meta
    assert convert([str(legacy), str(out), '--trust-pickle']) == 0
    printed = capsys.readouterr().out
    assert 'dropped: meta.hook' in printed and 'dropped: optimizer' in printed
    safe = torch.load(out, weights_only=True)
    assert sorted(safe) == ['meta', 'state_dict']
    assert safe['meta'] == {'epoch': 7, 'cfg': {'lr': 0.1}}
    for key, value in linear.state_dict().items():
        assert torch.equal(safe['state_dict'][key], value)
    assert [p.name for p in out.parent.iterdir()] == ['safe.pth']  # no temporary left
    # a bare state dict or a pickled module converts too
    torch.save(linear, tmp_path / 'module.pth')
    assert convert([str(tmp_path / 'module.pth'), str(out), '--trust-pickle']) == 0
    assert torch.equal(torch.load(out, weights_only=True)['state_dict']['weight'],
                       linear.weight)
    assert convert([str(tmp_path / 'missing.pth'), str(out)]) == 2


@pytest.mark.parametrize('module,flags', [
    ('tools.train', ['--work-dir', '--resume', '--amp', '--auto-scale-lr', '--cfg-options',
                     '--launcher', '--local-rank', '--local_rank']),
    ('tools.test', ['--work-dir', '--out', '--out-item', '--cfg-options', '--launcher',
                    '--tta']),
    ('tools.infer', ['--out', '--batch-size', '--device']),
    ('tools.visualize_attention', ['--out-dir', '--device', '--topk']),
    ('tools.publish_model', []),
    ('tools.deployment.export_onnx', ['--out']),
    ('tools.dataset_converters.make_digitbags', [
        '--out', '--canvas', '--digit-size', '--instances', '--target', '--num-train',
        '--num-val', '--num-test', '--seed']),
    ('tools.model_converters.convert_legacy_checkpoint', ['--trust-pickle']),
    ('tools.benchmarks.accuracy', ['--quick', '--models', '--epochs', '--seed', '--cfg-options']),
    ('tools.benchmarks.resolution', ['--quick', '--sizes', '--repeats', '--device']),
])
def test_tool_help_lists_the_documented_flags(module, flags, capsys):
    """Every tool answers --help with the flags README and the issues name."""
    import importlib
    parse_args = importlib.import_module(module).parse_args
    with pytest.raises(SystemExit) as exit_info:
        parse_args(['--help'])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith('usage:')
    for flag in flags:
        assert flag in text, f'{module} --help lacks {flag}'


WRITE_FAILS_MIDWAY = '''
import resource, signal, sys
import torch
backend_args = None
if sys.argv[2] == 'gattn':
    import gattn_mm  # noqa: F401  (registers the atomic local file backend)
    backend_args = dict(backend='atomic_local')  # what GattnCheckpointHook passes
from mmengine.runner import save_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit raises EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # like a full disk at 1 MiB
try:
    save_checkpoint({'state_dict': {'w': torch.ones(1 << 20)}}, sys.argv[1],
                    backend_args=backend_args)
except OSError as err:
    print('write failed:', err.strerror)
'''


@pytest.mark.parametrize('importer', ['gattn', 'upstream'])
def test_a_failed_checkpoint_write_keeps_the_old_file(tmp_path, importer):
    """mmengine's save_checkpoint, interrupted mid-write (file size limit): through
    gattn-mm's 'atomic_local' backend the previous file survives and no temporary is
    left; upstream alone truncates it (which shows the test can fail)."""
    target = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': {'w': torch.zeros(3)}}, target)
    script = tmp_path / 'write.py'
    script.write_text(WRITE_FAILS_MIDWAY)
    proc = subprocess.run([sys.executable, str(script), str(target), importer], cwd=ROOT,
                          env=env(), capture_output=True, text=True, timeout=120)
    assert 'write failed' in proc.stdout, proc.stderr[-3000:]
    if importer == 'gattn':
        old = torch.load(target, weights_only=True)
        assert torch.equal(old['state_dict']['w'], torch.zeros(3))
        assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_3.pth', 'write.py']
    else:
        with pytest.raises(Exception):
            torch.load(target, weights_only=True)


def test_amp_without_a_gpu_says_so(capsys):
    from mmengine.device import get_device

    from tools.train import main as train
    if get_device() not in ('cpu', 'mps'):
        pytest.skip('this machine has an accelerator: --amp is supported')
    with pytest.raises(SystemExit, match='--amp needs a GPU'):
        train([CFG, '--amp'])


def test_publish_model_names_strips_and_stays_safe(tmp_path):
    import datetime
    import hashlib
    import re

    from tools.publish_model import main as publish
    linear = torch.nn.Linear(3, 2)
    ckpt = tmp_path / 'epoch_3.pth'
    torch.save({'state_dict': linear.state_dict(), 'meta': {'epoch': 3, 'hook_msgs': {}},
                'optimizer': {'state': {}}, 'param_schedulers': [],
                'message_hub': {'log_scalars': {}}}, ckpt)
    publish([str(ckpt), str(tmp_path / 'out' / 'gattn_tiny.pth')])
    files = list((tmp_path / 'out').iterdir())
    assert len(files) == 1  # no temporary left
    match = re.fullmatch(r'gattn_tiny_(\d{8})-([0-9a-f]{8})\.pth', files[0].name)
    assert match and match.group(1) == f'{datetime.date.today():%Y%m%d}'
    assert hashlib.sha256(files[0].read_bytes()).hexdigest()[:8] == match.group(2)
    published = torch.load(files[0], weights_only=True)
    assert sorted(published) == ['meta', 'state_dict'] and published['meta'] == {'epoch': 3}
    assert torch.equal(published['state_dict']['weight'], linear.weight)
    # not a training checkpoint: a clear error naming the file
    torch.save({'weight': linear.weight}, tmp_path / 'bare.pth')
    with pytest.raises(KeyError, match='bare.pth'):
        publish([str(tmp_path / 'bare.pth'), str(tmp_path / 'out2' / 'x')])


def test_make_demo_trains_tests_and_draws_the_attention(tmp_path, tiny_digitbags):
    """``make demo`` (here on the tiny DigitBags, 1 epoch) ends with attention overlays
    of test bags of both classes, and prints where they are."""
    work = tmp_path / 'demo'
    proc = subprocess.run(
        ['make', '-s', 'demo', f'DEMO_CONFIG={CFG}', f'DATA_DIR={tiny_digitbags}',
         f'DEMO_DIR={work}', 'DEMO_OPTS=train_cfg.max_epochs=1'],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    out = proc.stdout
    assert f'attention:   {work}/overlays/ (6 test bags' in out
    assert 'loc/target_recall:' in out and 'accuracy/top1:' in out
    overlays = sorted(os.listdir(work / 'overlays'))
    labels = dict(line.split() for line in open(osp.join(tiny_digitbags, 'test.txt')))
    drawn = {f'images/test/{name}': labels[f'images/test/{name}'] for name in overlays}
    assert len(overlays) == 6 and sorted(drawn.values()) == ['0'] * 3 + ['1'] * 3
    # the training config draws val bags at every validation
    assert len(os.listdir(work / 'attention' / 'val_epoch_1')) == 4


def test_tta_is_refused_without_a_tta_pipeline(tiny_checkpoint, capsys):
    """No flip fallback: a flipped digit is another class (tools/test.py's main,
    in-process: the refusal comes before a model is built)."""
    from tools.test import main as test_tool
    config, ckpt = tiny_checkpoint
    with pytest.raises(SystemExit) as exit_info:
        test_tool([config, ckpt, '--tta'])
    message = str(exit_info.value.code)  # what the command line prints on stderr
    assert exit_info.value.code not in (0, None)
    assert 'does not fall back to flip TTA' in message and config in message
    out = capsys.readouterr()
    assert 'Epoch(test)' not in message + out.out + out.err


# in-process, two runners of one config within a second share mmengine's named
# instances (logger, visualizer, scope), which mmengine warns of
@pytest.mark.filterwarnings('ignore:.*instance named of .* has been created')
@pytest.mark.parametrize('kind', ['foreign', 'empty', 'classes', 'nan', 'meta'])
def test_a_checkpoint_of_another_model_is_refused_by_every_tool(tmp_path, tiny_checkpoint,
                                                                kind, capsys):
    """Non-strict loading would predict with random weights: test, infer, visualise,
    export and load_from refuse the checkpoint, naming it and the mismatching keys
    (in-process, through each tool's main; their command lines run as subprocesses in
    the other tests of this file and of tests/test_inference.py)."""
    import importlib
    config, ckpt = tiny_checkpoint
    good = torch.load(ckpt, weights_only=True)['state_dict']
    nan = dict(good)
    nan['head.fc.weight'] = torch.full_like(good['head.fc.weight'], float('nan'))
    bad = {'foreign': {'state_dict': {'foo.weight': torch.zeros(3)}}, 'empty': {},
           'classes': {'state_dict': {k: (torch.zeros(5, *v.shape[1:]) if 'head.fc.' in k
                                          else v) for k, v in good.items()}},
           'nan': {'state_dict': nan},
           'meta': {'state_dict': good, 'meta': {'dataset_meta': {'classes': ['a', 'b', 'c']}}},
           }[kind]
    path = tmp_path / f'{kind}.pth'
    torch.save(bad, path)
    image = osp.join(data_root_of(config), 'images', 'test', 'test_000000.png')
    cmds = [('test', [config, str(path), '--work-dir', str(tmp_path / 't')]),
            ('infer', [config, str(path), image, '--out', str(tmp_path / 'r.json')]),
            ('visualize_attention', [config, str(path), image, '--out-dir',
                                     str(tmp_path / 'v')]),
            ('deployment.export_onnx', [config, str(path), '--out', str(tmp_path / 'm.onnx')]),
            ('train', [config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                       f'load_from={path}', 'train_cfg.max_epochs=1'])]
    # every tool once, every kind once; class names from the meta label the inferencer's
    cmds = {'classes': cmds, 'meta': cmds[1:2]}.get(kind, cmds[:1])
    expected = {'foreign': '1 unexpected (foo.weight)', 'empty': 'missing',
                'classes': 'of another shape', 'nan': 'NaN or inf values (head.fc.weight)',
                'meta': "names the classes ['a', 'b', 'c'], but the model has 2"}[kind]
    for module, argv in cmds:
        main = importlib.import_module(f'tools.{module}').main
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        # what the command line prints on stderr: the exit message (one line)
        message = f'{exit_info.value.code} {capsys.readouterr().err}'
        assert exit_info.value.code not in (0, None), (module, argv)
        assert f'error: checkpoint {path}' in message, (module, message[-2000:])
        assert expected in message, (module, message[-2000:])
    assert not (tmp_path / 'r.json').exists() and not (tmp_path / 'm.onnx').exists()


def test_tools_refuse_an_empty_checkpoint_and_outputs_over_inputs(tmp_path, tiny_checkpoint,
                                                                  capsys):
    """No tool runs a model of random weights (an empty CHECKPOINT used to mean "none"),
    writes its results over an input image, the config or the checkpoint, takes an
    argument out of range or an output folder it cannot create, or fails with a
    traceback on a missing one (in-process: each refusal comes before a model is
    built)."""
    import importlib
    config, ckpt = tiny_checkpoint
    image = tmp_path / 'bag.png'
    image.write_bytes(open(osp.join(data_root_of(config), 'images', 'test',
                                    'test_000000.png'), 'rb').read())
    cases = [
        ('infer', [config, '', str(image)], 'argument checkpoint: empty'),
        ('visualize_attention', [config, '', str(image), '--out-dir', str(tmp_path)],
         'argument checkpoint: empty'),
        ('deployment.export_onnx', [config, str(tmp_path), '--out', str(tmp_path / 'm.onnx')],
         'is a folder, not a checkpoint file'),
        ('test', [config, str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path / 't')],
         'no such checkpoint file'),
        ('infer', [config, ckpt, str(image), '--out', str(image)],
         f'--out would overwrite the input {image}'),
        ('visualize_attention', [config, ckpt, str(image), '--out-dir', str(tmp_path)],
         f'--out-dir would overwrite the input {image}'),
        ('infer', [config, ckpt, str(tmp_path / 'missing.png')], 'no such image or folder'),
        ('infer', [config, ckpt, str(image), '--batch-size', '-1'],
         '--batch-size must be >= 1, got -1'),
        ('infer', [config, ckpt, str(image), '--max-pixels', '0'],
         '--max-pixels must be >= 1, got 0'),
        ('visualize_attention', [config, ckpt, str(image), '--out-dir', str(tmp_path / 'v'),
                                 '--topk', '-1'], '--topk must be >= 1, got -1'),
        ('visualize_attention', [config, ckpt, str(image), '--out-dir', str(tmp_path / 'v'),
                                 '--max-pixels', '0'], '--max-pixels must be >= 1, got 0'),
        ('visualize_attention', [config, ckpt, str(image), '--out-dir', str(image / 'v')],
         f'--out-dir {image / "v"}: cannot be created: {image} is not a folder'),
        ('visualize_attention', [config, ckpt, str(image), '--out-dir', str(image)],
         f'--out-dir {image}: {image} is not a folder'),
        ('deployment.export_onnx', [config, ckpt, '--out', str(tmp_path / 'm.onnx'),
                                    '--shape', '0', '0'], '--shape must be two positive sides'),
        ('deployment.export_onnx', [config, ckpt, '--out', ckpt],
         f'--out would overwrite the input {ckpt}'),
        ('deployment.export_onnx', [config, ckpt, '--out', config],
         f'--out would overwrite the input {config}'),
        ('deployment.export_onnx', [config, ckpt, '--out', str(tmp_path / 'no' / 'm.onnx')],
         'not a writable file path'),
    ]
    before = image.read_bytes()
    stamps = lambda: [(os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in (config, ckpt)]  # noqa
    inputs = stamps()
    for module, argv, expected in cases:
        main = importlib.import_module(f'tools.{module}').main
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        message = f'{exit_info.value.code} {capsys.readouterr().err}'
        assert exit_info.value.code != 0 and expected in message, (module, argv, message)
    assert image.read_bytes() == before and not (tmp_path / 'm.onnx').exists()
    assert not (tmp_path / 'v').exists() and stamps() == inputs


def test_export_shape_below_the_glance_and_failed_drawings_are_named(tmp_path, tiny_checkpoint,
                                                                     monkeypatch, capsys):
    """export_onnx refuses a --shape smaller than model.global_size (not a raw
    ValueError from inside the model); visualize_attention stops at a drawing it cannot
    write (a full disk), naming the file, and leaves the older drawing whole."""
    import errno

    from gattn_mm.runtime import AtomicLocalBackend
    from tools.deployment import export_onnx
    from tools import visualize_attention
    config, ckpt = tiny_checkpoint
    with pytest.raises(SystemExit) as exit_info:  # tests/data/tiny_digitbags.py: 32
        export_onnx.main([config, ckpt, '--out', str(tmp_path / 'm.onnx'),
                          '--shape', '16', '64'])
    assert '--shape 16 64 is smaller than' in str(exit_info.value.code)
    assert 'model.global_size=(32, 32)' in str(exit_info.value.code)
    assert not (tmp_path / 'm.onnx').exists()
    image = osp.join(data_root_of(config), 'images', 'test', 'test_000000.png')
    out_dir = tmp_path / 'vis'
    argv = [config, ckpt, image, '--out-dir', str(out_dir), '--device', 'cpu']
    png, = visualize_attention.main(argv)
    assert osp.basename(png) == 'test_000000.png' and osp.getsize(png) > 0
    before = open(png, 'rb').read()

    def full_disk(self, data, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(AtomicLocalBackend, 'put', full_disk)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        visualize_attention.main(argv)
    assert f'cannot write {png}: No space left on device' in str(exit_info.value.code)
    assert 'drawings written to' not in capsys.readouterr().out
    assert open(png, 'rb').read() == before and os.listdir(out_dir) == ['test_000000.png']


def data_root_of(config):
    from mmengine.config import Config
    return Config.fromfile(config).test_dataloader.dataset.data_root


@pytest.mark.parametrize('hook_type', ['gattn', 'upstream'])
def test_a_failed_save_keeps_the_last_good_checkpoint(tmp_path, hook_type):
    """max_keep_ckpts=1 and a full disk at the second save: GattnCheckpointHook (what
    default_runtime.py names) still has epoch 1 and last_checkpoint names it;
    mmengine's own has deleted it first (which shows the test can fail)."""
    from collections import deque

    from mmengine.fileio import get_file_backend
    from mmengine.hooks import CheckpointHook as Upstream
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import gattn_mm  # noqa: F401
    from mmpretrain.registry import HOOKS
    init_default_scope('mmpretrain')
    hook = HOOKS.build(dict(type='GattnCheckpointHook', interval=1, max_keep_ckpts=1)) \
        if hook_type == 'gattn' else Upstream(interval=1, max_keep_ckpts=1)
    assert (type(hook).__module__ == 'gattn_mm.runtime.checkpoint_hook') == \
        (hook_type == 'gattn')
    hook.out_dir, hook.filename_tmpl = str(tmp_path), 'epoch_{}.pth'
    hook.file_backend, hook.keep_ckpt_ids = get_file_backend(str(tmp_path)), deque(maxlen=1)

    class Runner:
        work_dir = str(tmp_path)
        message_hub = MessageHub.get_instance(f'full_disk_{hook_type}')
        disk_full = False

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            if self.disk_full:
                raise OSError(28, 'No space left on device')
            torch.save({'state_dict': {}}, osp.join(out_dir, filename))

    runner = Runner()
    hook._save_checkpoint_with_step(runner, 1, {})
    runner.disk_full = True
    with pytest.raises(OSError):
        hook._save_checkpoint_with_step(runner, 2, {})
    last = open(tmp_path / 'last_checkpoint').read().strip()
    if hook_type == 'gattn':
        assert osp.isfile(tmp_path / 'epoch_1.pth') and last.endswith('epoch_1.pth')
        runner.disk_full = False
        hook._save_checkpoint_with_step(runner, 3, {})  # space again: rotation resumes
        assert sorted(os.listdir(tmp_path)) == ['epoch_3.pth', 'last_checkpoint']
    else:
        assert not osp.isfile(tmp_path / 'epoch_1.pth')


def test_a_failed_best_save_keeps_the_previous_best(tmp_path):
    """save_best: mmengine removes the previous best before writing the new one; with
    gattn-mm's hook a failed write of the new best leaves the previous best."""
    import gattn_mm  # noqa: F401
    from mmengine.fileio import get_file_backend
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    from mmpretrain.registry import HOOKS
    init_default_scope('mmpretrain')
    hook = HOOKS.build(dict(type='GattnCheckpointHook', interval=1, save_best='acc',
                            rule='greater'))
    hook.out_dir, hook.file_backend = str(tmp_path), get_file_backend(str(tmp_path))
    hook.key_indicators, hook.rules, hook.by_epoch = ['acc'], ['greater'], True
    hook.best_ckpt_path, hook.filename_tmpl = None, 'epoch_{}.pth'

    class Runner:
        work_dir = str(tmp_path)
        message_hub = MessageHub.get_instance('best_full_disk')
        logger = __import__('mmengine').logging.MMLogger.get_instance('best_full_disk')
        disk_full, epoch, iter = False, 1, 10

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            if self.disk_full:
                raise OSError(28, 'No space left on device')
            torch.save({'state_dict': {}}, osp.join(out_dir, filename))

    runner = Runner()
    hook._save_best_checkpoint(runner, {'acc': 0.5})
    first = sorted(os.listdir(tmp_path))
    assert first == ['best_acc_epoch_1.pth']
    runner.disk_full, runner.epoch = True, 2
    with pytest.raises(OSError):
        hook._save_best_checkpoint(runner, {'acc': 0.9})
    assert osp.isfile(tmp_path / 'best_acc_epoch_1.pth')
    runner.disk_full, runner.epoch = False, 3
    hook._save_best_checkpoint(runner, {'acc': 0.95})
    assert sorted(os.listdir(tmp_path)) == ['best_acc_epoch_3.pth']


def test_kept_checkpoint_list_is_saved_with_each_checkpoint(tmp_path):
    """The rotation list goes into the checkpoint being written (so a resume rotates
    it out later), as upstream does, while the deletion waits for the save."""
    from collections import deque

    import gattn_mm  # noqa: F401
    from mmengine.fileio import get_file_backend
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    from mmpretrain.registry import HOOKS
    init_default_scope('mmpretrain')
    hook = HOOKS.build(dict(type='GattnCheckpointHook', interval=1, max_keep_ckpts=2))
    hook.out_dir, hook.filename_tmpl = str(tmp_path), 'epoch_{}.pth'
    hook.file_backend, hook.keep_ckpt_ids = get_file_backend(str(tmp_path)), deque(maxlen=2)
    stored = {}

    class Runner:
        work_dir = str(tmp_path)
        message_hub = MessageHub.get_instance('kept_list')

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            stored[filename] = self.message_hub.get_info('keep_ckpt_ids')
            torch.save({'state_dict': {}}, osp.join(out_dir, filename))

    for step in (1, 2, 3):
        hook._save_checkpoint_with_step(Runner(), step, {})
    assert stored == {'epoch_1.pth': [1], 'epoch_2.pth': [1, 2], 'epoch_3.pth': [2, 3]}
    assert sorted(os.listdir(tmp_path)) == ['epoch_2.pth', 'epoch_3.pth', 'last_checkpoint']


def test_time_budget_hook_stops_before_the_epoch_that_would_overrun(monkeypatch):
    from types import SimpleNamespace

    import gattn_mm.engine.hooks.time_budget_hook as mod
    from gattn_mm.engine.hooks import TimeBudgetHook
    clock = iter([0.0, 40.0, 85.0])  # start, after epoch 1 (40 s), after epoch 2
    monkeypatch.setattr(mod.time, 'perf_counter', lambda: next(clock))
    runner = SimpleNamespace(epoch=0, train_loop=SimpleNamespace(stop_training=False),
                             logger=SimpleNamespace(info=lambda msg: None))
    hook = TimeBudgetHook(seconds=100)
    hook.before_train(runner)
    hook.after_train_epoch(runner)  # 40 s + 40 s per epoch <= 100 s: go on
    assert not runner.train_loop.stop_training
    runner.epoch = 1
    hook.after_train_epoch(runner)  # 85 s + 42.5 s > 100 s: stop
    assert runner.train_loop.stop_training
    with pytest.raises(ValueError, match='seconds=0 must be a positive finite number'):
        TimeBudgetHook(seconds=0)


def test_time_budget_hook_ends_an_iteration_based_run_where_it_stops(tmp_path, monkeypatch):
    """Under IterBasedTrainLoop the budget stops between iterations; the stopped
    iteration is checkpointed (last_checkpoint) as a planned end would be."""
    from types import SimpleNamespace

    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import gattn_mm.engine.hooks.time_budget_hook as mod
    from gattn_mm.engine.hooks import TimeBudgetHook

    ticks = iter(range(100))  # every clock reading: one second later
    monkeypatch.setattr(mod, 'time', SimpleNamespace(perf_counter=lambda: next(ticks)))

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(1, 1)

        def forward(self, inputs, data_samples=None, mode='loss'):
            return {'loss': self.fc(torch.stack(inputs)).pow(2).mean()}

    runner = Runner(
        model=Toy(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(1))] * 8, batch_size=1,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=20),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=100)),
        custom_hooks=[TimeBudgetHook(seconds=4.5)], default_scope='mmpretrain')
    runner.train()
    # 1 s per iteration: after 4 iterations a fifth would end at 5 s > 4.5 s
    assert runner.iter == 4
    assert os.listdir(tmp_path).count('iter_4.pth') == 1
    assert open(tmp_path / 'last_checkpoint').read().strip().endswith('iter_4.pth')
