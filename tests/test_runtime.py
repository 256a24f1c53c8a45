"""``import gattn_mm`` registers parts under new names and replaces nothing of mmengine
or mmpretrain; the checkpoint runtime (``gattn_mm.runtime.safe_checkpoints``) switches
its safety on for its duration only and restores everything on exit."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Records, in a fresh interpreter, every piece of mmengine / mmpretrain that gattn-mm
# used to replace, imports gattn_mm (after `import mmpretrain` when argv[1] says so),
# and reports which of them are not the very same objects afterwards.
RECORD_IMPORT_COMPARE = r'''
import json, sys
if sys.argv[1] == 'mmpretrain first':
    import mmpretrain, mmpretrain.apis, mmpretrain.registry  # noqa: F401
import torch, torch.hub
import mmengine.fileio.io as fileio_io
import mmengine.hooks
import mmengine.runner
import mmengine.runner.checkpoint as ckpt
from mmengine.fileio.backends import backends, prefix_to_backends
from mmengine.model import weight_init
from mmengine.registry import HOOKS, WEIGHT_INITIALIZERS


def pretrained_registry():
    return {'PretrainedInit': weight_init.PretrainedInit,
            'PretrainedInit.__call__': weight_init.PretrainedInit.__dict__['__call__'],
            'WEIGHT_INITIALIZERS': dict(WEIGHT_INITIALIZERS.module_dict)}


def mmpretrain_hooks():
    if 'mmpretrain.registry' not in sys.modules:
        return None
    from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
    return {'mmpretrain HOOKS CheckpointHook': PRETRAIN_HOOKS.module_dict.get('CheckpointHook'),
            'mmpretrain HOOKS.get(CheckpointHook)': PRETRAIN_HOOKS.get('CheckpointHook')}


def record():
    return {
        'CheckpointLoader._schemes': dict(ckpt.CheckpointLoader._schemes),
        'CheckpointLoader._get_checkpoint_loader':
            ckpt.CheckpointLoader.__dict__['_get_checkpoint_loader'],
        'CheckpointLoader.load_checkpoint': ckpt.CheckpointLoader.__dict__['load_checkpoint'],
        'checkpoint.load_state_dict': ckpt.load_state_dict,
        'runner.load_state_dict': mmengine.runner.load_state_dict,
        'checkpoint.load_from_http': ckpt.load_from_http,
        'checkpoint.load_from_local': ckpt.load_from_local,
        'checkpoint._load_checkpoint': ckpt._load_checkpoint,
        'torch.load': torch.load,
        'torch.hub.load_state_dict_from_url': torch.hub.load_state_dict_from_url,
        'mmengine HOOKS CheckpointHook': HOOKS.module_dict.get('CheckpointHook'),
        'mmengine.hooks.CheckpointHook': mmengine.hooks.CheckpointHook,
        'file backends': dict(backends),
        'file backend prefixes': dict(prefix_to_backends),
        'file backend instances': dict(fileio_io.backend_instances),
        **pretrained_registry(),
        **(mmpretrain_hooks() or {}),
    }


def changes(before, after):
    """Names whose object (or, for a table, any entry's object) is not the same."""
    out = {}
    for name, old in before.items():
        new = after.get(name)
        if isinstance(old, dict):
            changed = sorted(str(k) for k in old if k not in new or new[k] is not old[k])
            added = sorted(str(k) for k in new if k not in old)
            if changed or added:
                out[name] = {'changed': changed, 'added': added}
        elif new is not old:
            out[name] = {'changed': [repr(new)], 'added': []}
    return out


before = record()
import gattn_mm  # noqa: E402,F401
after = record()
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS  # noqa: E402
print('RESULT ' + json.dumps(dict(
    changes=changes(before, after),
    mmpretrain_recorded='mmpretrain HOOKS CheckpointHook' in before,
    # what a config in mmpretrain's scope builds for type='CheckpointHook'
    checkpoint_hook_is_mmengines=PRETRAIN_HOOKS.get('CheckpointHook') is
    mmengine.hooks.CheckpointHook and 'CheckpointHook' not in PRETRAIN_HOOKS.module_dict)))
'''

# what importing gattn_mm may add: new names only (runtime parts), nothing changed
ADDED_NAMES = {'CheckpointLoader._schemes': {'changed': [], 'added': ['gattn-safe:']},
               'file backends': {'changed': [], 'added': ['atomic_local']}}


@pytest.mark.parametrize('first', ['mmengine only', 'mmpretrain first'])
def test_import_gattn_mm_leaves_mmengine_as_it_was(first, tmp_path):
    """Checked in a fresh interpreter: checkpoint loaders (every scheme and the loader
    lookup), hooks registry entries (``CheckpointHook`` in mmengine's and mmpretrain's
    HOOKS), file backends (names, prefixes, instances), ``PretrainedInit`` (class,
    ``__call__``, the initialiser registry) and ``load_state_dict`` are the very same
    objects after ``import gattn_mm``; the only additions are the runtime's two new
    names, ``gattn-safe:`` (a scheme) and ``atomic_local`` (a backend)."""
    script = tmp_path / 'record.py'
    script.write_text(RECORD_IMPORT_COMPARE)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, str(script), first], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split('RESULT ', 1)[1])
    assert result['changes'] == ADDED_NAMES, result['changes']
    assert result['mmpretrain_recorded'] == (first == 'mmpretrain first')
    assert result['checkpoint_hook_is_mmengines']


def test_the_runtime_switches_for_its_duration_and_restores_everything():
    """Inside ``safe_checkpoints`` (nested too) loaders, ``load_state_dict`` and
    ``PretrainedInit.__call__`` are the runtime's; after it, also after an error, the
    very same upstream objects; a scheme registered meanwhile stays registered."""
    import mmengine.runner.checkpoint as ckpt
    from mmengine.model.weight_init import PretrainedInit

    import gattn_mm  # noqa: F401
    from gattn_mm.runtime import safe_checkpoints
    from gattn_mm.runtime.loaders import SAFE_LOADERS

    def state():
        return (dict(ckpt.CheckpointLoader._schemes), ckpt.load_state_dict,
                PretrainedInit.__dict__['__call__'])

    def same(a, b):
        return a[0].keys() == b[0].keys() and all(a[0][k] is b[0][k] for k in a[0]) and \
            a[1] is b[1] and a[2] is b[2]

    upstream = state()
    with safe_checkpoints():
        inside = state()
        assert all(loader in SAFE_LOADERS for loader in inside[0].values())
        assert inside[1] is not upstream[1] and inside[2] is not upstream[2]
        with safe_checkpoints():
            pass
        assert same(state(), inside)
    assert same(state(), upstream)
    with pytest.raises(RuntimeError, match='inside'):
        with safe_checkpoints():
            raise RuntimeError('inside')
    assert same(state(), upstream)

    def other_loader(filename, map_location=None):
        return {}
    try:
        with safe_checkpoints():
            ckpt.CheckpointLoader.register_scheme('gattn-test-other://', other_loader)
        assert ckpt.CheckpointLoader._schemes['gattn-test-other://'] is other_loader
        assert all(ckpt.CheckpointLoader._schemes[k] is v for k, v in upstream[0].items())
    finally:
        ckpt.CheckpointLoader._schemes = upstream[0]


def test_gattn_checkpoint_hook_writes_through_the_atomic_backend(tmp_path):
    """For a local work dir the hook saves through 'atomic_local' (its file backend and
    the Runner's save_checkpoint); a config's own backend_args are kept."""
    from types import SimpleNamespace

    from mmengine.registry import init_default_scope

    import gattn_mm  # noqa: F401
    from gattn_mm.runtime import AtomicLocalBackend
    from mmpretrain.registry import HOOKS
    init_default_scope('mmpretrain')
    runner = SimpleNamespace(work_dir=str(tmp_path), logger=SimpleNamespace(info=print))
    hook = HOOKS.build(dict(type='GattnCheckpointHook', interval=1))
    hook.before_train(runner)
    assert hook.backend_args == dict(backend='atomic_local')
    assert type(hook.file_backend) is AtomicLocalBackend
    hook = HOOKS.build(dict(type='GattnCheckpointHook', interval=1,
                            backend_args=dict(backend='local')))
    hook.before_train(runner)
    assert hook.backend_args == dict(backend='local')
    assert type(hook.file_backend) is not AtomicLocalBackend


def test_configs_and_tools_switch_the_runtime_on_by_name():
    """default_runtime.py names GattnCheckpointHook and SafeCheckpointHook; the tools
    give a config that names mmpretrain's CheckpointHook by its bare name the gattn one
    (an explicit mmengine.CheckpointHook is kept) and add SafeCheckpointHook."""
    from mmengine.config import Config

    from gattn_mm.utils import ensure_safe_checkpoints
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    assert cfg.default_hooks.checkpoint.type == 'GattnCheckpointHook'
    assert dict(type='SafeCheckpointHook') in cfg.custom_hooks
    for given, built in (('CheckpointHook', 'GattnCheckpointHook'),
                         ('mmengine.CheckpointHook', 'mmengine.CheckpointHook')):
        cfg = ensure_safe_checkpoints(Config(dict(
            default_hooks=dict(checkpoint=dict(type=given, interval=1)))))
        assert cfg.default_hooks.checkpoint.type == built
        assert cfg.custom_hooks == [dict(type='SafeCheckpointHook')]
