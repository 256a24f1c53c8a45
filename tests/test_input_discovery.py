"""Every folder walk takes every file name a reader takes, from the reader's own table
(one constant), and a folder with no image is an error, never a silent exit 0."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from gattn_mm.apis import expand_image_paths
from gattn_mm.datasets.slides import OPENSLIDE_EXTENSIONS, READABLE_EXTENSIONS
from gattn_mm.datasets.transforms import read_image
from gattn_mm.datasets.transforms.image_reading import (FORMAT_EXTENSIONS, IMG_EXTENSIONS,
                                                        PILLOW_FORMATS)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_the_extensions_are_the_readers_table():
    from PIL import Image as PIL
    PIL.init()
    registered = PIL.registered_extensions()  # Pillow's own: extension -> format
    for fmt in PILLOW_FORMATS:
        assert {e for e, f in registered.items() if f == fmt} <= set(FORMAT_EXTENSIONS[fmt])
    assert set(IMG_EXTENSIONS) == {e for exts in FORMAT_EXTENSIONS.values() for e in exts}
    assert set(READABLE_EXTENSIONS) == set(IMG_EXTENSIONS) | set(OPENSLIDE_EXTENSIONS)
    for ext in ('.svs', '.ndpi', '.mrxs', '.webp', '.gif', '.tif', '.jpe', '.btf'):
        assert ext in READABLE_EXTENSIONS


def write_as(path, fmt, rgb):
    """``rgb`` written in ``fmt`` under ``path`` (any name)."""
    import tifffile
    if fmt == 'TIFF':
        tifffile.imwrite(path, rgb, photometric='rgb')
    else:
        options = dict(WEBP=dict(lossless=True), JPEG=dict(quality=95, subsampling=0))
        fmt = {'MPO': 'JPEG'}.get(fmt, fmt)
        Image.fromarray(rgb).save(path, format=fmt, **options.get(fmt, {}))


def test_every_extension_walked_is_read(tmp_path):
    """A folder holding one image per extension of the table (upper case too, some in a
    sub-folder): the walk finds every one, in order, and the reader reads them all."""
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[:, :16] = (200, 40, 10)
    (tmp_path / 'sub').mkdir()
    expected = []
    for fmt, exts in FORMAT_EXTENSIONS.items():
        for i, ext in enumerate(exts):
            folder = tmp_path / 'sub' if i == 0 else tmp_path
            path = folder / f'{fmt.lower()}_{i}{ext.upper() if i % 2 else ext}'
            write_as(path, fmt, rgb)
            expected.append(str(path))
    write_as(tmp_path / 'small_slide.svs', 'TIFF', rgb)  # an SVS is a TIFF
    expected.append(str(tmp_path / 'small_slide.svs'))
    (tmp_path / 'notes.txt').write_text('not an image')
    write_as(tmp_path / '._hidden.png', 'PNG', rgb)  # macOS AppleDouble: hidden
    (tmp_path / '.thumbs').mkdir()
    write_as(tmp_path / '.thumbs' / 'x.png', 'PNG', rgb)
    found = expand_image_paths([str(tmp_path)])
    assert sorted(found) == sorted(expected)
    assert found == sorted(found, key=lambda p: (osp.dirname(p), osp.basename(p)))
    for path in found:
        tol = 12 if path.lower().endswith(('.jpg', '.jpeg', '.jpe', '.jfif', '.mpo')) else 0
        assert np.abs(read_image(path).astype(int) - rgb).max() <= tol, path


def test_a_folder_without_images_is_an_error(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match=r'no images in the folder .*empty: it is empty'):
        expand_image_paths([str(tmp_path / 'empty')])
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'scan.czi').write_bytes(b'x')
    (tmp_path / 'other' / '._x.png').write_bytes(b'x')
    with pytest.raises(FileNotFoundError, match=r'no images in the folder .*other: it holds 1 '
                                                r'other file\(s\), e.g. scan.czi; images are '
                                                r'read from .tif'):
        expand_image_paths([str(tmp_path / 'other')])
    (tmp_path / 'named.czi').write_bytes(b'x')  # a file given by name is kept: the
    assert expand_image_paths([str(tmp_path / 'named.czi')]) == [str(tmp_path / 'named.czi')]
    with pytest.raises(FileNotFoundError, match='no such image or folder'):
        expand_image_paths([str(tmp_path / 'none')])


CONFIG = osp.join(ROOT, 'configs', 'gattn_digitbags.py')
CHECKPOINT = osp.join(ROOT, 'checkpoints', 'gattn_r18_digitbags_20261129-7edf335a.pth')


def bag(path, fmt):
    write_as(path, fmt, np.full((512, 512, 3), 140, np.uint8))


def test_infer_and_visualize_take_every_format_of_a_folder(tmp_path, capsys):
    from tools.infer import main as infer
    from tools.visualize_attention import main as visualize
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for name, fmt in (('a.webp', 'WEBP'), ('b.gif', 'GIF'), ('c.svs', 'TIFF'),
                      ('d.JPE', 'JPEG')):
        bag(folder / name, fmt)
    out = tmp_path / 'r.json'
    assert infer([CONFIG, CHECKPOINT, str(folder), '--out', str(out), '--device', 'cpu']) == 0
    got = [osp.basename(r['image']) for r in json.load(open(out))['results']]
    assert got == ['a.webp', 'b.gif', 'c.svs', 'd.JPE']
    written = visualize([CONFIG, CHECKPOINT, str(folder), '--out-dir', str(tmp_path / 'vis'),
                         '--device', 'cpu'])
    assert sorted(osp.basename(w) for w in written) == ['a.png', 'b.png', 'c.png', 'd.png']


def test_tools_refuse_a_folder_without_images(tmp_path, capsys):
    from tools.infer import main as infer
    from tools.visualize_attention import main as visualize
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('x')
    for tool, args in ((infer, ['--out', str(tmp_path / 'r.json')]),
                       (visualize, ['--out-dir', str(tmp_path / 'vis')])):
        with pytest.raises(SystemExit) as err:
            tool([CONFIG, CHECKPOINT, str(tmp_path / 'empty'), *args])
        assert err.value.code != 0 and 'no images in the folder' in str(err.value.code)
    assert not (tmp_path / 'vis').exists() and not (tmp_path / 'r.json').exists()
