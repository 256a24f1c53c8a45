"""tools/device/gpu_check.sh --dry-run: the GPU check's wiring, on the CPU (so the
script is ready, and stays so, for the session that is lent a GPU)."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_gpu_check_dry_run_writes_its_table(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('OUT', None)
    proc = subprocess.run(['bash', 'tools/device/gpu_check.sh', '--dry-run', str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    result = json.load(open(tmp_path / 'gpu_check.json'))
    assert result['dry_run'] and result['environment']['device'] == 'cpu'
    steps = {s['step']: s['status'] for s in result['steps']}
    assert list(steps) == ['tests on cuda', 'data digitbags_short', 'train',
                           'dist_train.sh, 1 process',
                           'resolution benchmark --quick --sizes 128']
    assert set(steps.values()) == {'ok'}, steps
    table = (tmp_path / 'gpu_check.md').read_text()
    assert table.startswith('GPU check on cpu') and '| dist_train.sh, 1 process | ok |' in table
    assert (tmp_path / 'resolution_cpu_dry_0_quick.json').exists()


def test_prepare_wheels_lists_what_the_device_lacks():
    """The wheel list names every OpenMMLab distribution gattn-mm imports."""
    text = open(osp.join(ROOT, 'tools', 'device', 'prepare_wheels.sh')).read()
    for name in ('mmengine', 'mmpretrain', 'mmcv-lite', 'modelindex', 'addict', 'yapf'):
        assert f' {name} ' in text.replace('(', ' ').replace('\n', ' ') + ' ', name
