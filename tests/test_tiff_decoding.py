"""A TIFF's strips and tiles decode to at most what its header declares, on every read
path (read_image, the slide reader and its thumbnail): a compressed segment that
inflates beyond its declared size (a decompression bomb) is refused without decoding
the rest, an image-coded segment (JPEG, PNG, WebP, JPEG 2000) larger than its tile is
refused from its own header before its decoder runs, and the tiles' (or strips')
pixels and bytes count against the budget. Well-formed files of every layout read as
before. Offline and fast: the files are written here, byte by byte where a writer
would refuse."""
import io
import lzma
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import tifffile

from gattn_mm.datasets.slides import SlideError, open_slide
from gattn_mm.datasets.transforms import ImageReadError, LoadMicroscopyImage, read_image
from gattn_mm.datasets.transforms.tiff_decoding import embedded_size

BOMB = 16 << 20  # what one hostile segment inflates to, from about 16 KB stored


def deflate_zeros(n: int) -> bytes:
    c, chunk = zlib.compressobj(9), bytes(1 << 22)
    parts = [c.compress(chunk[:min(n - i, len(chunk))]) for i in range(0, n, len(chunk))]
    return b''.join(parts) + c.flush()


def write_tiff(path, h, w, segments, tile=None, rows=None, compression=8, spp=1):
    """A little-endian classic TIFF of one uint8 image whose strips (``rows`` each) or
    tiles (``tile`` = (th, tw)) are the given bytes, as stored, whatever they decode to."""
    tags = {256: (4, [w]), 257: (4, [h]), 258: (3, [8] * spp), 259: (3, [compression]),
            262: (3, [2 if spp == 3 else 1]), 277: (3, [spp]), 284: (3, [1])}
    if tile:
        tags.update({322: (4, [tile[1]]), 323: (4, [tile[0]])})
        offsets, counts = 324, 325
    else:
        tags[278] = (4, [rows or h])
        offsets, counts = 273, 279
    data = bytearray(b'II*\0\0\0\0\0')
    starts = []
    for s in segments:
        starts.append(len(data))
        data += s + b'\0' * (len(s) % 2)
    tags[offsets], tags[counts] = (4, starts), (4, [len(s) for s in segments])
    entries = []
    for tag in sorted(tags):
        typ, values = tags[tag]
        raw = struct.pack(f'<{len(values)}{"H" if typ == 3 else "I"}', *values)
        if len(raw) > 4:
            entries.append((tag, typ, len(values), struct.pack('<I', len(data))))
            data += raw
        else:
            entries.append((tag, typ, len(values), raw.ljust(4, b'\0')))
    data[4:8] = struct.pack('<I', len(data))
    data += struct.pack('<H', len(entries))
    for tag, typ, n, value in entries:
        data += struct.pack('<HHI', tag, typ, n) + value
    path.write_bytes(bytes(data) + b'\0\0\0\0')
    return str(path)


def peak_while(fn):
    """fn()'s exception (or None) and the most memory Python allocated meanwhile."""
    tracemalloc.start()
    try:
        fn()
        err = None
    except Exception as e:  # noqa: BLE001
        err = e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return err, peak


BOMBS = {  # compression: (name, stored bytes of a segment inflating to BOMB bytes)
    8: ('DEFLATE', lambda: deflate_zeros(BOMB)),
    34925: ('LZMA', lambda: lzma.compress(bytes(BOMB), preset=0)),
    32773: ('PackBits', lambda: b'\x81\x00' * (BOMB // 128)),
}
LAYOUTS = {  # name: (h, w, write_tiff keywords, number of segments)
    'one strip': (64, 64, {}, 1),
    'strips': (64, 64, {'rows': 16}, 4),
    'one tile': (64, 64, {'tile': (64, 64)}, 1),
    'tiles': (64, 96, {'tile': (32, 32)}, 6),
}


@pytest.fixture(scope='module')
def bombs():
    return {c: make() for c, (_, make) in BOMBS.items()}


@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('compression', BOMBS)
def test_a_segment_inflating_beyond_its_size_is_refused_unread(tmp_path, bombs, compression,
                                                               layout):
    h, w, kw, n = LAYOUTS[layout]
    size = h * w // n  # of each segment
    ok = zlib.compress(bytes(size)) if compression == 8 else \
        lzma.compress(bytes(size), preset=0) if compression == 34925 else b'\x81\x00' * (size // 128)
    segments = [ok] * (n - 1) + [bombs[compression]]  # the last one is hostile
    path = write_tiff(tmp_path / 'bomb.tif', h, w, segments, compression=compression, **kw)
    name = BOMBS[compression][0]
    err, peak = peak_while(lambda: read_image(path))
    assert isinstance(err, ImageReadError), err
    assert str(err).startswith(f'{path}: a {name} segment (strip or tile) decodes to more '
                               f'than the ')
    assert 'decompression bomb' in str(err)
    assert peak < BOMB // 8, f'{peak:,} bytes allocated to refuse it'
    # the slide reader (a region, the thumbnail) refuses it as well
    slide = open_slide(path, 10 ** 6)
    err, peak = peak_while(lambda: slide.read(0, 0, 0, h, w))
    assert isinstance(err, SlideError) and f'a {name} segment' in str(err), err
    assert peak < BOMB // 8


def test_a_pyramid_level_holding_a_bomb_is_refused_by_the_thumbnail(tmp_path, bombs):
    """The slide loader reads the smallest level whole (the thumbnail): its tile too
    decodes to no more than declared."""
    path = str(tmp_path / 'pyramid.tif')
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.full((512, 512, 3), 90, np.uint8), tile=(128, 128), compression='zlib',
                  photometric='rgb', subifds=1)
        tif.write(np.full((128, 128, 3), 90, np.uint8), tile=(128, 128), compression='zlib',
                  photometric='rgb', subfiletype=1)
    load = LoadMicroscopyImage(lazy_slides=True, thumbnail_size=64)
    assert load(dict(img_path=path))['img'].shape == (64, 64, 3)
    with open(path, 'ab') as f:  # the small level's tile replaced by a bomb at the end
        start = f.tell()
        f.write(bombs[8])
    with tifffile.TiffFile(path, mode='r+b') as tif:
        page = tif.series[0].levels[1].keyframe
        page.tags['TileOffsets'].overwrite([start])
        page.tags['TileByteCounts'].overwrite([len(bombs[8])])
    err, peak = peak_while(lambda: load(dict(img_path=path)))
    assert isinstance(err, SlideError) and 'a DEFLATE segment (strip or tile) decodes to ' \
        'more than the 49,152 bytes its header declares' in str(err), err
    assert peak < BOMB // 8


@pytest.mark.parametrize('compression', ['zlib', 'lzma', None])  # tifffile's writers
@pytest.mark.parametrize('layout', [dict(rowsperstrip=7), dict(rowsperstrip=1000),
                                    dict(tile=(16, 32)), dict(tile=(64, 64))])
@pytest.mark.parametrize('shape', [(50, 70), (50, 70, 3)])
def test_well_formed_files_read_as_before(tmp_path, compression, layout, shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = str(tmp_path / 'ok.tif')
    tifffile.imwrite(path, img, compression=compression, **layout)
    expected = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=-1)
    np.testing.assert_array_equal(read_image(path), expected)
    np.testing.assert_array_equal(open_slide(path, 10 ** 6).read(0, 5, 9, 30, 40),
                                  expected[5:35, 9:49])


def test_a_last_strip_shorter_than_the_others_reads(tmp_path):
    img = np.arange(70 * 10, dtype=np.uint8).reshape(70, 10)
    path = write_tiff(tmp_path / 's.tif', 70, 10, [
        zlib.compress(img[i:i + 32].tobytes()) for i in (0, 32, 64)], rows=32)
    np.testing.assert_array_equal(read_image(path)[..., 0], img)


def pillow_bytes(fmt: str, side: int, **kw) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new('RGB', (side, side)).save(buf, fmt, **kw)
    return buf.getvalue()


IMAGE_CODECS = {  # compression: (name, an encoder of a side x side RGB image)
    7: ('JPEG', lambda side: pillow_bytes('JPEG', side)),
    34933: ('PNG', lambda side: pillow_bytes('PNG', side)),
    50001: ('WebP lossy', lambda side: pillow_bytes('WEBP', side)),
    50001.1: ('WebP lossless', lambda side: pillow_bytes('WEBP', side, lossless=True)),
    33003: ('JPEG 2000', lambda side: b'\xff\x4f\xff\x51\x00\x29\x00\x00' +
            struct.pack('>IIII', side, side, 0, 0) + bytes(32)),
}


@pytest.mark.parametrize('codec', IMAGE_CODECS)
def test_an_image_in_a_tile_larger_than_the_tile_is_refused_before_decoding(tmp_path, codec):
    """With imagecodecs, tifffile decodes a tile's JPEG/PNG/WebP whatever size it says
    (8192^2 from a 2.5 KB WebP) and only then finds it does not fit."""
    name, encode = IMAGE_CODECS[codec]
    compression = int(codec)
    assert embedded_size(compression, encode(4096)) == (4096, 4096), name
    assert embedded_size(compression, encode(256)) == (256, 256), name
    for kw in (dict(tile=(256, 256)), dict(rows=256)):
        path = write_tiff(tmp_path / 'big.tif', 256, 256, [encode(4096)],
                          compression=compression, spp=3, **kw)
        with pytest.raises(ImageReadError, match=r'big.tif: segment 0 \(a tile or strip of '
                                                 r'256 x 256\) holds an image of 4096 x 4096 '
                                                 r'pixels; refused before decoding it'):
            read_image(path)
        with pytest.raises(SlideError, match=r'holds an image of 4096 x 4096 pixels'):
            open_slide(path, 10 ** 6).read(0, 0, 0, 16, 16)
    # one that fits is handed to its decoder (imagecodecs, when installed)
    path = write_tiff(tmp_path / 'fits.tif', 256, 256, [encode(256)], tile=(256, 256),
                      compression=compression, spp=3)
    try:
        read_image(path)
    except ImageReadError as err:
        assert 'refused before decoding' not in str(err), err  # imagecodecs' (or tifffile's)


def test_an_image_coded_tile_without_a_readable_size_is_refused(tmp_path):
    path = write_tiff(tmp_path / 'odd.tif', 64, 64, [b'\xff\xd8\xff\xda' + bytes(60)],
                      tile=(64, 64), compression=7, spp=3)
    with pytest.raises(ImageReadError, match=r'holds an image of no size it can be checked by'):
        read_image(path)


def test_codecs_whose_size_is_not_checked_are_refused_by_name(tmp_path):
    path = write_tiff(tmp_path / 'jxl.tif', 64, 64, [bytes(64)], tile=(64, 64),
                      compression=50002, spp=3)
    with pytest.raises(ImageReadError, match=r'jxl.tif: its tiles are JPEG XL images, whose '
                                             r'decoded size gattn-mm does not check'):
        read_image(path)


@pytest.mark.parametrize('kw,decoded', [(dict(tile=(4096, 4096)), 4096 * 4096),
                                        (dict(rows=64), 64 * 64)])
def test_the_budget_counts_the_segments_decoded(tmp_path, kw, decoded):
    """Tiles count whole (padding included) in pixels and bytes, before decoding."""
    seg = zlib.compress(bytes(decoded))
    path = write_tiff(tmp_path / 'pad.tif', 64, 64, [seg], **kw)
    if decoded > 64 * 64:
        with pytest.raises(ImageReadError, match=r'pad.tif: its 64 x 64 pixels are stored in '
                                                 r'1 tile\(s\) of 4096 x 4096'):
            read_image(path, max_pixels=1_000_000)
        with pytest.raises(SlideError, match=r'decodes 1 tile\(s\) of 4096 x 4096'):
            open_slide(path, 1_000_000)
    assert read_image(path, max_pixels=decoded).shape == (64, 64, 3)


def test_wide_samples_count_in_bytes_of_the_tiles(tmp_path):
    path = str(tmp_path / 'rgba16.tif')
    tifffile.imwrite(path, np.zeros((20, 20, 4), np.uint16), tile=(64, 64),
                     photometric='rgb', extrasamples=['unassalpha'])
    with pytest.raises(ImageReadError, match=r'rgba16.tif: its \(1, 1, 1\) segments \(tiles '
                                             r'or strips\) of \(64, 64, 4\) samples decode to '
                                             r'32,768 bytes, over the limit of 20,000'):
        read_image(path, max_pixels=5_000)
    assert read_image(path, max_pixels=8_192).shape == (20, 20, 3)
