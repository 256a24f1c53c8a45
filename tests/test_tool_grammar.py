"""One command-line grammar for the tools that run a model (tools/infer.py,
tools/visualize_attention.py, tools/deployment/export_onnx.py): (CONFIG CHECKPOINT |
MODEL_NAME); outputs named after the inputs' relative paths; a slide given to a canvas
model refused with what reads it; get_model by name and by config after
`import mmpretrain` alone."""
import importlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from gattn_mm.apis import output_paths

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAME = 'gattn_r18_digitbags'
CONFIG = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
TOOLS = ('infer', 'visualize_attention', 'deployment.export_onnx')


def tool(module):
    return importlib.import_module(f'tools.{module}')


@pytest.fixture
def image(tmp_path, tiny_digitbags):
    path = tmp_path / 'bag.png'
    shutil.copy(osp.join(tiny_digitbags, 'images', 'test', 'test_000000.png'), path)
    return str(path)


def test_every_tool_takes_a_model_name_or_a_config_and_checkpoint(tmp_path, image):
    ckpt = tmp_path / 'w.pth'
    ckpt.write_bytes(b'x')
    out = ['--out-dir', str(tmp_path / 'v')]
    infer = tool('infer').parse_args([NAME, image])
    assert (infer.model_name, infer.checkpoint, infer.images) == (NAME, None, [image])
    vis = tool('visualize_attention').parse_args([NAME, image, image, *out])
    assert (vis.model_name, vis.checkpoint, vis.images) == (NAME, None, [image, image])
    export = tool('deployment.export_onnx').parse_args([NAME, '--out', 'm.onnx'])
    assert (export.model_name, export.checkpoint) == (NAME, None)
    vis = tool('visualize_attention').parse_args([CONFIG, str(ckpt), image, *out])
    assert (vis.model_name, vis.checkpoint, vis.images) == (None, str(ckpt), [image])
    export = tool('deployment.export_onnx').parse_args([CONFIG, str(ckpt), '--out', 'm.onnx'])
    assert (export.model_name, export.checkpoint) == (None, str(ckpt))


@pytest.mark.parametrize('module, argv, expected', [
    ('infer', [NAME, 'w.pth', 'bag.png'], 'is a published model and brings its own weights'),
    ('deployment.export_onnx', [NAME, 'w.pth', '--out', 'm.onnx'],
     'is a published model and brings its own weights'),
    ('visualize_attention', ['gattn_r18_nosuch', 'bag.png', '--out-dir', 'v'],
     "'gattn_r18_nosuch' is neither a config file nor a published model (one of: "),
    ('infer', ['configs/nosuch.py', 'w.pth', 'bag.png'], 'configs/nosuch.py: no such config'),
    ('deployment.export_onnx', [CONFIG, '--out', 'm.onnx'], 'needs its checkpoint'),
    ('infer', [NAME], 'no IMAGES given'),
    ('visualize_attention', [NAME, '--out-dir', 'v'], 'no IMAGES given'),
])
def test_the_model_arguments_are_refused_alike(tmp_path, monkeypatch, capsys, module, argv,
                                               expected):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as info:
        tool(module).parse_args(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and expected in err, err


@pytest.mark.parametrize('module', TOOLS)
def test_help_shows_the_one_grammar(module, capsys):
    with pytest.raises(SystemExit):
        tool(module).parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert '(CONFIG CHECKPOINT | MODEL_NAME)' in text and 'gattn_r18_digitbags' in text


def test_outputs_are_named_after_their_relative_paths(tmp_path):
    out = str(tmp_path / 'out')
    a, b = str(tmp_path / 'in' / 'a' / 'img.png'), str(tmp_path / 'in' / 'b' / 'img.png')
    assert output_paths([a, b], out, '.png') == [osp.join(out, 'a', 'img.png'),
                                                 osp.join(out, 'b', 'img.png')]
    assert output_paths([a], out, '.geojson') == [osp.join(out, 'img.geojson')]
    x_png, x_tif = str(tmp_path / 'x.png'), str(tmp_path / 'x.tif')
    assert output_paths([x_png, x_tif], out, '.png') == [osp.join(out, 'x.png.png'),
                                                         osp.join(out, 'x.tif.png')]
    with pytest.raises(ValueError, match='given twice'):
        output_paths([a, osp.join(tmp_path, 'in', 'a', '..', 'a', 'img.png')], out, '.png')


def test_visualize_by_model_name_keeps_same_named_images_apart(tmp_path, image):
    for sub in ('a', 'b'):
        (tmp_path / 'in' / sub).mkdir(parents=True)
        shutil.copy(image, tmp_path / 'in' / sub / 'img.png')
    out = tmp_path / 'vis'
    written = tool('visualize_attention').main(
        [NAME, str(tmp_path / 'in'), '--out-dir', str(out), '--device', 'cpu', '--topk', '2'])
    assert sorted(written) == [str(out / 'a' / 'img.png'), str(out / 'b' / 'img.png')]
    assert sorted(os.listdir(out)) == ['a', 'b']


def test_export_by_model_name(tmp_path, capsys):
    pytest.importorskip('onnx')
    out = tmp_path / 'm.onnx'
    tool('deployment.export_onnx').main([NAME, '--out', str(out), '--shape', '128', '128'])
    assert out.stat().st_size > 0 and f'exported {out}' in capsys.readouterr().out


def test_a_slide_given_to_a_canvas_model_is_refused_with_what_reads_it(tmp_path):
    from tools.dataset_converters import make_slide
    slide = str(tmp_path / 'slide.tif')
    make_slide.main(['--side', '2000', '--out', slide])
    out = tmp_path / 'r.json'
    code = tool('infer').main([NAME, slide, '--out', str(out), '--max-pixels', '1000000'])
    failure = json.loads(out.read_text())['failures'][0]['error']
    assert code == 1 and 'is a whole-slide image of 2,000 x 2,000 px' in failure
    assert 'run a native-resolution config' in failure and 'raise it with' not in failure


def run_python(code):
    env = dict(os.environ, PYTHONPATH='')
    return subprocess.run([sys.executable, '-c', code], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=300)


def test_get_model_after_import_mmpretrain_alone():
    """mmpretrain's get_model looks names up in mmpretrain's own model index only: a
    gattn model's name needs `import gattn_mm` first (README, docs/inference.md); a
    gattn config builds after `import mmpretrain` alone (its custom_imports import
    gattn_mm)."""
    proc = run_python(
        'import mmpretrain\n'
        'try:\n'
        f'    mmpretrain.get_model({NAME!r})\n'
        'except ValueError as err:\n'
        '    print("refused:", err)\n'
        f'print(type(mmpretrain.get_model({CONFIG!r})).__name__)\n'
        'import gattn_mm\n'
        f'print(type(mmpretrain.get_model({NAME!r}, pretrained=True)).__name__)\n')
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stdout.splitlines() if not x.startswith('Loads checkpoint')]
    assert lines[0].startswith(f'refused: Failed to find model "{NAME}"')
    assert lines[1:] == ['GatedAttentionClassifier'] * 2
