"""Re-probe of issue 33's failure examples (not a test): each is run in-process where it
is cheap and printed as PASS (refused clearly / fixed) or FAIL; the ones needing a
trained model or a subprocess name the test that covers them. Run:
nice -n 19 .venv/bin/python benchmarks/experiments/probes/issue33_reprobe.py"""
import os
import os.path as osp
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import tifffile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
sys.path.insert(0, ROOT)
from gattn_mm.datasets.slides import open_slide  # noqa: E402
from gattn_mm.datasets.transforms import ImageReadError, read_image  # noqa: E402

TMP = tempfile.mkdtemp()
results = []


def probe(name):
    def wrap(fn):
        try:
            ok, said = fn()
        except BaseException as err:  # noqa: BLE001
            ok, said = False, f'{type(err).__name__}: {err}'
        results.append((name, ok))
        print(f'{"PASS" if ok else "FAIL"}  {name}: {str(said)[:160]}')
    return wrap


def refused(fn, *words):
    try:
        fn()
    except (ImageReadError, SystemExit, ValueError) as err:
        return all(w in str(err) for w in words), str(err)
    return False, 'not refused'


@probe('1 pyramid whose 512 level is one 16384 tile')
def _():
    path = osp.join(TMP, 'tile.tif')
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros((1024, 1024, 3), np.uint8), tile=(256, 256), subifds=1,
                  compression='zlib', photometric='rgb')
        tif.write(np.zeros((512, 512, 3), np.uint8), tile=(16384, 16384), subfiletype=1,
                  compression='zlib', photometric='rgb')
    return refused(lambda: open_slide(path, 178_956_970), 'tile(s) of 16384 x 16384')


@probe('1b deflate bomb strip (tiny stored, huge decoded)')
def _():
    sys.path.insert(0, osp.join(ROOT, 'tests'))
    from test_tiff_decoding import deflate_zeros, write_tiff
    import pathlib
    path = write_tiff(pathlib.Path(TMP) / 'bomb.tif', 64, 64, [deflate_zeros(256 << 20)])
    return refused(lambda: read_image(path), 'decompression bomb')


@probe('3 export_onnx --shape 100000 100000')
def _():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
    from export_onnx import check_shape
    return refused(lambda: check_shape((100000, 100000), '--shape'), 'over the limit')


@probe('4 CMYK TIFF read as RGB (not C, M, Y)')
def _():
    path = osp.join(TMP, 'cmyk.tif')
    tifffile.imwrite(path, np.array([[[0, 255, 255, 0]]], np.uint8), photometric='separated')
    px = read_image(path)[0, 0].tolist()
    return px == [255, 0, 0], px


@probe('7 SlideFolder / 6 duplicate classes / 8 classes string (metadata checks)')
def _():
    from gattn_mm.datasets.base_microscopy import check_classes
    return refused(lambda: check_classes('ab', 'meta'), 'ab')


@probe('9 folder walk takes .svs .ndpi .webp .gif')
def _():
    from gattn_mm.datasets.slides.base import READABLE_EXTENSIONS
    return all(e in READABLE_EXTENSIONS for e in ('.svs', '.ndpi', '.webp', '.gif')), \
        'READABLE_EXTENSIONS'


@probe('17 0x0 array to the reader')
def _():
    from gattn_mm.datasets.transforms.image_reading import to_rgb_uint8
    return refused(lambda: to_rgb_uint8(np.zeros((0, 0, 3), np.uint8)), 'empty image')


@probe('22 TIFF with no pages')
def _():
    path = osp.join(TMP, 'nopages.tif')
    with open(path, 'wb') as f:
        f.write(b'II*\0\x08\0\0\0\0\0\0\0\0\0')
    return refused(lambda: read_image(path), path)


@probe('19 dist_train.sh quotes its arguments')
def _():
    text = open(osp.join(ROOT, 'tools', 'dist_train.sh')).read()
    return '"$CONFIG"' in text, 'quoted'


@probe('errors as one line: a missing config to tools/test.py')
def _():
    r = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'),
                        osp.join(TMP, 'missing.py'), osp.join(TMP, 'x.pth')],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    return r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr.strip()[-160:]


COVERED = {  # failure example: the test of its class (they need a model or a second run)
    '2 num_instances=100000': 'tests/test_work_bounds.py::test_tools_refuse_too_many_instances_before_the_run',
    '5 multi-label JSON': 'tests/test_prediction_outputs.py',
    '10 mmpretrain inferencer bomb / stack': 'tests/test_work_bounds.py::test_mmpretrain_inferencer_reads_through_the_project_reader',
    '11 two trainings in one work dir': 'tests/test_output_safety.py',
    '12 visualize_attention over a user PNG': 'tests/test_output_safety.py',
    '13 test.py --out read-only': 'tests/test_output_safety.py',
    '14 --resume legacy checkpoint': 'tests/test_small_inputs.py',
    '16 pathlib.Path to the inferencer': 'tests/test_small_inputs.py',
    '20 ONNX at batch 4': 'tests/test_small_inputs.py::test_onnx_runs_at_every_batch_it_declares',
}
for name, test in COVERED.items():
    print(f'TEST  {name}: {test}')
print(f'{sum(ok for _, ok in results)}/{len(results)} probes pass')
