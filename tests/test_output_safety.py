"""What the tools write never costs the user data: one run per work dir (a second is
refused naming the first), no file overwritten that is not the tool's own output,
output paths checked before the work (a read-only folder fails at once)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from gattn_mm.apis.outputs import (LOCK_NAME, WorkDirBusyError, is_own_drawing,
                                   work_dir_lock, writable_file_problem)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = osp.join(ROOT, 'tests', 'data', 'tiny_digitbags.py')
CONFIG = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
CHECKPOINT = osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_20261129-7edf335a.pth')
READ_ONLY = '/sys'  # writes fail there even for root (permission bits do not)


def hold(work_dir):
    """A process holding ``work_dir`` as a run does (until killed)."""
    code = ('import sys, time; from gattn_mm.apis.outputs import work_dir_lock\n'
            'with work_dir_lock(sys.argv[1]):\n'
            '    print("held", flush=True); time.sleep(600)\n')
    proc = subprocess.Popen([sys.executable, '-c', code, str(work_dir)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


def test_one_work_dir_one_run(tmp_path):
    work = tmp_path / 'w'
    other = hold(work)
    try:
        with pytest.raises(WorkDirBusyError, match=f'the work dir {work} is in use by '
                                                   f'another run \\(pid {other.pid} on .* since '
                                                   f'.*: python\\S* -c {work}\\); give this run '
                                                   f'another --work-dir'):
            with work_dir_lock(str(work)):
                pass
        with work_dir_lock(str(work), rank=1):  # the other ranks of a run take no lock
            pass
    finally:
        other.send_signal(signal.SIGKILL)  # a run that dies holds nothing
        other.wait()
    with work_dir_lock(str(work)):
        with pytest.raises(WorkDirBusyError):  # also within one process
            with work_dir_lock(str(work)):
                pass
    with work_dir_lock(str(work)):  # released after each run
        assert (work / LOCK_NAME).read_text().startswith('{"pid": ')


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_train_and_test_refuse_a_busy_work_dir_before_building(tmp_path, tool, capsys):
    from tools import test as test_tool
    from tools import train
    other = hold(tmp_path / 'w')
    try:
        args = [TINY, '--work-dir', str(tmp_path / 'w')]
        main = train.main if tool == 'train' else test_tool.main
        if tool == 'test':
            args.insert(1, CHECKPOINT)
        t = time.perf_counter()
        with pytest.raises(SystemExit, match=f'error: the work dir .* in use by another run '
                                             f'\\(pid {other.pid} '):
            main(args)
        assert time.perf_counter() - t < 30
        assert os.listdir(tmp_path / 'w') == [LOCK_NAME]  # no log, no checkpoint
    finally:
        other.kill()
        other.wait()


def test_visualize_never_overwrites_a_file_it_did_not_draw(tmp_path, capsys):
    from tools.visualize_attention import main as visualize
    folder = tmp_path / 'd'
    folder.mkdir()
    Image.fromarray(np.full((512, 512), 140, np.uint8)).save(folder / 'x.jpg')
    user = np.random.default_rng(0).integers(0, 255, (20, 30), np.uint8)
    Image.fromarray(user).save(folder / 'x.png')  # the user's own picture
    before = (folder / 'x.png').read_bytes()
    with pytest.raises(SystemExit, match=r'--out-dir: .*x.png exists and is not a drawing'):
        visualize([CONFIG, CHECKPOINT, str(folder / 'x.jpg'), '--out-dir', str(folder)])
    assert (folder / 'x.png').read_bytes() == before
    os.symlink(folder / 'x.png', tmp_path / 'link.png')  # a link to it: not ours either
    with pytest.raises(SystemExit, match='link.png exists and is not a drawing'):
        _visualize_as(visualize, folder / 'x.jpg', tmp_path, 'link')
    assert (folder / 'x.png').read_bytes() == before
    out = tmp_path / 'vis'  # its own drawings are replaced on a second run
    for _ in range(2):
        written = visualize([CONFIG, CHECKPOINT, str(folder / 'x.jpg'), '--out-dir', str(out),
                             '--device', 'cpu'])
        assert written == [str(out / 'x.png')] and is_own_drawing(written[0])
    drawing = np.asarray(Image.open(written[0]))  # the mark leaves a valid PNG
    assert drawing.shape[2] == 3 and drawing.shape[0] > 512


def _visualize_as(visualize, image, out_dir, stem):
    """visualize_attention on a copy of ``image`` named ``stem`` + its extension."""
    import shutil
    copy = image.parent / f'{stem}{image.suffix}'
    shutil.copy(image, copy)
    try:
        visualize([CONFIG, CHECKPOINT, str(copy), '--out-dir', str(out_dir)])
    finally:
        copy.unlink()


def test_write_png_refuses_a_foreign_file(tmp_path):
    from gattn_mm.apis.gattn_inferencer import write_png
    (tmp_path / 'a.png').write_bytes(b'not ours')
    with pytest.raises(FileExistsError, match='a.png exists and is not a drawing'):
        write_png(str(tmp_path / 'a.png'), np.zeros((4, 4, 3), np.uint8))
    assert (tmp_path / 'a.png').read_bytes() == b'not ours'
    write_png(str(tmp_path / 'b.png'), np.zeros((4, 4, 3), np.uint8))
    write_png(str(tmp_path / 'b.png'), np.ones((4, 4, 3), np.uint8))  # its own: replaced
    assert np.asarray(Image.open(tmp_path / 'b.png')).max() == 1


def test_output_paths_are_tried_before_the_work(tmp_path, capsys):
    if writable_file_problem(osp.join(READ_ONLY, 'x.pkl')) is None:
        pytest.skip(f'{READ_ONLY} is writable here')
    from tools import test as test_tool
    from tools.deployment import export_onnx
    from tools.infer import main as infer
    (tmp_path / 'dir.pkl').mkdir()
    for out, why in ((osp.join(READ_ONLY, 'preds.pkl'), f'cannot write in {READ_ONLY}'),
                     (str(tmp_path / 'no' / 'preds.pkl'), 'its folder .* does not exist'),
                     (str(tmp_path / 'dir.pkl'), 'is a folder')):
        t = time.perf_counter()
        with pytest.raises(SystemExit, match=f'error: --out {out}: {why}'):
            test_tool.main([TINY, CHECKPOINT, '--out', out, '--work-dir', str(tmp_path / 'w')])
        assert time.perf_counter() - t < 5 and not (tmp_path / 'w').exists()
    json_out = osp.join(READ_ONLY, 'r.json')
    with pytest.raises(SystemExit) as err:
        infer([CONFIG, CHECKPOINT, CHECKPOINT, '--out', json_out])
    assert err.value.code == 2 and f'cannot write in {READ_ONLY}' in capsys.readouterr().err
    with pytest.raises(SystemExit, match=f'--out {READ_ONLY}/m.onnx: not a writable file'):
        export_onnx.main([TINY, CHECKPOINT, '--out', osp.join(READ_ONLY, 'm.onnx')])
