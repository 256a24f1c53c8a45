"""A refusal the user caused ends a tool with one clear line on stderr and exit code 1,
not a traceback (gattn_mm.apis.cli.run_tool, every tool's command line): configs,
data roots, annotations, checkpoints, a full disk; --debug or GATTN_DEBUG=1 shows the
traceback, and a bug of gattn-mm keeps its traceback."""
import errno
import os.path as osp
import subprocess
import sys

import pytest
import torch

from gattn_mm.apis.cli import run_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')
TOOLS = ['train.py', 'test.py', 'infer.py', 'visualize_attention.py', 'demo.py',
         'download.py', 'publish_model.py', 'deployment/export_onnx.py',
         'model_converters/convert_legacy_checkpoint.py',
         'model_converters/upgrade_gattn_checkpoint.py',
         'dataset_converters/make_digitbags.py', 'dataset_converters/make_megapixel_mnist.py',
         'dataset_converters/make_slide.py', 'dataset_converters/make_synthcells.py']


def one_line(capsys, code, *expected):
    """The refusal's exit code and stderr: 1, one ``error:`` line naming ``expected``
    and the hint, no traceback."""
    err = capsys.readouterr().err
    assert code == 1, err
    assert 'Traceback' not in err and err.count('error: ') == 1, err
    assert '--debug or GATTN_DEBUG=1' in err
    for text in expected:
        assert text in err, (text, err)
    return err


def configs(tmp_path):
    bad = {
        'unknown.py': "model = dict(type='NoSuchModel')",
        'sampler.py': "model = dict(sampler=dict(test_cfg=dict(nope=1)))",
        'nodata.py': f"train_dataloader = dict(dataset=dict(data_root='{tmp_path}/nodata'))",
    }
    for name, line in bad.items():
        (tmp_path / name).write_text(f"_base_ = ['{TINY}']\n{line}\n")
    (tmp_path / 'syntax.py').write_text('x = (\n')
    return tmp_path


@pytest.mark.parametrize('config, expected', [
    ('unknown.py', ['KeyError: NoSuchModel is not in the mmpretrain::model registry']),
    ('sampler.py', ["sampler.test_cfg has unknown keys ['nope']"]),
    ('nodata.py', ['DigitBags: data root', 'nodata', 'does not exist']),
    ('syntax.py', ['SyntaxError']),
    ('missing.py', ['FileNotFoundError', 'missing.py']),
])
def test_train_refusals_are_one_line(tmp_path, capsys, config, expected):
    from tools import train
    configs(tmp_path)
    code = run_tool(train.main, [str(tmp_path / config), '--work-dir', str(tmp_path / 'w')])
    one_line(capsys, code, *expected)


def test_test_refuses_a_bad_annotation_in_one_line(tmp_path, capsys, tiny_digitbags):
    import shutil

    from tools import test as test_tool
    data = tmp_path / 'data'
    shutil.copytree(tiny_digitbags, data)
    with open(data / 'test.txt', 'a') as f:
        f.write('images/test/x.png not_a_label\n')
    code = run_tool(test_tool.main, [
        TINY, osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_20261129-7edf335a.pth'),
        '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', f'test_dataloader.dataset.data_root={data}'])
    one_line(capsys, code, "test.txt:", "label 'not_a_label' is not an integer")


def test_publish_refusals_and_a_full_disk_are_one_line(tmp_path, capsys, monkeypatch):
    from gattn_mm.runtime import AtomicLocalBackend
    from tools import publish_model
    torch.save({'meta': {}}, tmp_path / 'nostate.pth')
    one_line(capsys, run_tool(publish_model.main, [str(tmp_path / 'nostate.pth'),
                                                   str(tmp_path / 'out')]),
             'KeyError', 'nostate.pth: no "state_dict" key')
    (tmp_path / 'evil.pth').write_bytes(b'\x80\x02cos\nsystem\nq\x00.')
    one_line(capsys, run_tool(publish_model.main, [str(tmp_path / 'evil.pth'),
                                                   str(tmp_path / 'out')]),
             'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(2)}}, tmp_path / 'ok.pth')

    def full(self, obj, path):
        raise OSError(errno.ENOSPC, 'No space left on device', str(path))
    monkeypatch.setattr(AtomicLocalBackend, 'put', full)
    one_line(capsys, run_tool(publish_model.main, [str(tmp_path / 'ok.pth'),
                                                   str(tmp_path / 'out')]),
             'OSError: [Errno 28] No space left on device')


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, monkeypatch):
    from tools import train
    configs(tmp_path)
    argv = [str(tmp_path / 'unknown.py'), '--work-dir', str(tmp_path / 'w')]
    with pytest.raises(KeyError, match='NoSuchModel'):
        run_tool(train.main, argv + ['--debug'])
    monkeypatch.setenv('GATTN_DEBUG', '1')
    with pytest.raises(KeyError, match='NoSuchModel'):
        run_tool(train.main, argv)
    monkeypatch.delenv('GATTN_DEBUG')

    def buggy(argv):
        return None.shape  # an AttributeError: gattn-mm's bug, not the user's input
    with pytest.raises(AttributeError):
        run_tool(buggy, [])
    for err in (OSError(errno.EBADF, 'Bad file descriptor'), IndexError('x'),
                RuntimeError('shape mismatch')):
        def raising(argv, err=err):
            raise err
        with pytest.raises(type(err)):
            run_tool(raising, [])
    assert run_tool(lambda argv: {'accuracy': 1.0}, []) == 0  # test.py returns metrics
    assert run_tool(lambda argv: 3, []) == 3
    with pytest.raises(SystemExit, match='error: as before'):
        run_tool(lambda argv: (_ for _ in ()).throw(SystemExit('error: as before')), [])


def test_a_worker_error_is_its_last_line(capsys):
    class Wrapped(ValueError):
        pass
    err = Wrapped('Caught AnnotationError in DataLoader worker process 0.\nOriginal '
                  'Traceback (most recent call last):\n  File "x.py", line 1\n'
                  'gattn_mm.datasets.base_microscopy.AnnotationError: a.txt:3: bad label')

    def raising(argv):
        raise err
    assert run_tool(raising, []) == 1
    assert 'error: Wrapped: a.txt:3: bad label' in capsys.readouterr().err


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_runs_through_run_tool(tool):
    source = open(osp.join(ROOT, 'tools', tool)).read()
    assert source.rstrip().endswith('raise SystemExit(run_tool(main))'), tool


def test_the_command_line_prints_one_line(tmp_path):
    configs(tmp_path)
    cmd = [sys.executable, 'tools/train.py', str(tmp_path / 'sampler.py'), '--work-dir',
           str(tmp_path / 'w')]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert "error: ValueError: sampler.test_cfg has unknown keys ['nope']" in proc.stderr
    proc = subprocess.run(cmd + ['--debug'], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and 'Traceback (most recent call last)' in proc.stderr
