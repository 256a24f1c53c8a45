"""A TIFF's strips and tiles decoded within what its header declares, or refused.

The pixel budget counts the segments (tiles or strips) a read decodes, from the header
(:func:`chunk_shape`, :func:`decoded_bytes`); :func:`guard_decoding` makes sure no
segment decodes to more than that:

- a compressed stream (DEFLATE, LZMA, ZSTD, PackBits, LZW) stops at its segment's
  declared size: a tiny stored strip that inflates to gigabytes (a decompression bomb)
  is refused after decoding its declared size, never decoded further. imagecodecs'
  decoders stop there (they decode into a buffer of that size; their refusal is named
  here) except LZMA's, which truncates; tifffile's own fallbacks, used without
  imagecodecs, do not stop, so those and LZMA are replaced by bounded ones for the page;
- a segment that is an image of its own (JPEG, PNG, WebP, JPEG 2000: decoded by
  imagecodecs whatever size it says) has its own header read first and is refused when
  it is larger than the tile or strip holding it, before its decoder runs; other such
  codecs (JPEG XR, JPEG XL, EER, Jetraw), whose size is not checked, are refused by name.
"""
import lzma
import struct
import threading
import zlib
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Optional, Tuple

import numpy as np

JPEG = (6, 7, 33007, 34892)
JPEG2000 = (33003, 33004, 33005, 34712)
PNG, WEBP = 34933, 50001
UNCHECKED_IMAGES = {22610: 'JPEG XR', 34934: 'JPEG XR', 48124: 'Jetraw', 50002: 'JPEG XL',
                    52546: 'JPEG XL', 65000: 'EER', 65001: 'EER', 65002: 'EER'}
READ = ('uncompressed, DEFLATE, LZMA, ZSTD, LZW, PackBits, JPEG, PNG, WebP or JPEG 2000 '
        '(the last five and LZW with imagecodecs)')


class TiffDecodeError(ValueError):
    """A strip or tile would decode to more than its header declares."""


def chunk_shape(page, height: int, width: int) -> Tuple[int, int]:
    """(h, w) of the tiles a TIFF page is stored in, or of its strips (rows of the
    whole width): the unit a read decodes, whatever region it asks for."""
    if page.is_tiled:
        return int(page.tilelength), int(page.tilewidth)
    rows = int(getattr(page, 'rowsperstrip', 0) or height)
    return max(1, min(rows, height)), width


def decoded_bytes(page) -> int:
    """Bytes decoded to read the whole page: every segment whole (tiles with their
    padding, strips of full rows), samples and planes included."""
    return int(np.prod(page.chunks, dtype=object) * np.prod(page.chunked, dtype=object)) \
        * (np.dtype(page.dtype).itemsize if page.dtype is not None else 1)


def _bomb(what: str, size: int) -> TiffDecodeError:
    return TiffDecodeError(
        f'a {what} segment (strip or tile) decodes to more than the {size:,} bytes its '
        f'header declares (a decompression bomb?); refused without decoding the rest')


def _zlib(data, out=None, **_):
    d = zlib.decompressobj()
    limit = out if isinstance(out, int) and out > 0 else 0
    result = d.decompress(data, limit)
    if limit and not d.eof and d.decompress(d.unconsumed_tail, 1):
        raise _bomb('DEFLATE', limit)
    if not d.eof:
        raise zlib.error('incomplete or truncated DEFLATE stream')
    return result


def _lzma(data, out=None, **_):
    limit = out if isinstance(out, int) and out > 0 else -1
    d = lzma.LZMADecompressor(memlimit=LZMA_MEMORY + max(limit, 0))  # its dictionary
    result = d.decompress(data, limit)
    if limit > 0 and not d.eof and d.decompress(b'', 1):
        raise _bomb('LZMA', limit)
    return result


def _zstd(data, out=None, **_):
    from compression import zstd  # Python >= 3.14, where tifffile's fallback uses it
    d = zstd.ZstdDecompressor()
    limit = out if isinstance(out, int) and out > 0 else -1
    result = d.decompress(data, limit)
    if limit > 0 and not d.eof and d.decompress(b'', 1):
        raise _bomb('ZSTD', limit)
    return result


def _packbits(data, out=None, **_):
    limit = out if isinstance(out, int) and out > 0 else 0
    result, i, n = bytearray(), 0, len(data)
    while i < n:
        c = data[i]
        if c < 128:
            result += data[i + 1:i + c + 2]
            i += c + 2
        else:
            if c > 128:
                result += data[i + 1:i + 2] * (257 - c)
            i += 2 if c > 128 else 1
        if limit and len(result) > limit:
            raise _bomb('PackBits', limit)
    return bytes(result)


LZMA_MEMORY = 128 << 20  # an LZMA header names its dictionary's size: at most this
BOUNDED = {8: _zlib, 32946: _zlib, 50013: _zlib, 34925: _lzma, 50000: _zstd, 34926: _zstd,
           32773: _packbits}


NAMES = {8: 'DEFLATE', 32946: 'DEFLATE', 50013: 'DEFLATE', 34925: 'LZMA', 50000: 'ZSTD',
         34926: 'ZSTD', 32773: 'PackBits', 5: 'LZW'}
# what imagecodecs' decoders say when a segment does not fit the size they were given
OVERFLOW = ('TOO_SMALL', 'too small', 'INSUFFICIENT_SPACE')


def _named_overflow(codec, name: str):
    """imagecodecs' ``codec``, its refusal of a segment over its size said as ours."""
    def decode(data, out=None, **kwargs):
        try:
            return codec(data, out=out, **kwargs)
        except Exception as err:
            if isinstance(out, int) and any(s in str(err) for s in OVERFLOW):
                raise _bomb(name, out) from err
            raise
    return decode


class _BoundedCodecs(Mapping):
    """tifffile's decompressors, each stopping at a segment's declared size: its
    fallbacks (which ignore the size) and LZMA (imagecodecs' truncates silently)
    replaced by bounded ones, imagecodecs' others kept, their overflow named."""

    def __init__(self, codecs):
        self.codecs = codecs

    def __getitem__(self, key):
        codec = self.codecs[key]
        if key == 34925 or key in BOUNDED and \
                getattr(codec, '__module__', '').endswith('_imagecodecs'):
            return BOUNDED[key]
        if key in NAMES:
            return _named_overflow(codec, NAMES[key])
        return codec

    def __iter__(self):
        return iter(self.codecs)

    def __len__(self):
        return len(self.codecs)


_SWAP = threading.Lock()


@contextmanager
def _bounded_codecs():
    from tifffile import TIFF
    with _SWAP:
        original = TIFF.DECOMPRESSORS
        vars(TIFF)['DECOMPRESSORS'] = _BoundedCodecs(original)
        try:
            yield
        finally:
            vars(TIFF)['DECOMPRESSORS'] = original


def guard_decoding(page) -> None:
    """Make ``page`` (a tifffile ``TiffPage``, before anything of its file is decoded)
    decode no segment beyond its declared size (see the module's docstring); frames
    sharing it as their keyframe decode through it. Raises nothing itself: a segment
    over its size raises :class:`TiffDecodeError` when read."""
    decode = page.__dict__.get('decode')
    if getattr(decode, 'gattn_guarded', False):
        return
    with _bounded_codecs():
        page.__dict__.pop('decode', None)
        getattr(page.parent.root, '_decoders', {}).pop(page.hash, None)  # tifffile's cache
        decode = page.decode  # computed now: its closure holds the bounded codecs
    compression = int(page.compression)
    if compression in UNCHECKED_IMAGES:
        name = UNCHECKED_IMAGES[compression]

        def guarded(*args, **kwargs):
            raise TiffDecodeError(
                f'its tiles are {name} images, whose decoded size gattn-mm does not check '
                f'before decoding; it reads TIFFs {READ}: convert it')
    elif compression in JPEG + JPEG2000 + (PNG, WEBP):
        h, w = chunk_shape(page, int(page.imagelength), int(page.imagewidth))

        def guarded(data, index, *args, **kwargs):
            if data is not None:
                size = embedded_size(compression, kwargs.get('jpegheader') or data)
                if size is None or size[0] > h or size[1] > w:
                    said = 'no size it can be checked by' if size is None else \
                        f'{size[1]} x {size[0]} pixels'
                    raise TiffDecodeError(
                        f'segment {index} (a tile or strip of {w} x {h}) holds an image of '
                        f'{said}; refused before decoding it')
            return decode(data, index, *args, **kwargs)
    else:
        def guarded(*args, **kwargs):
            return decode(*args, **kwargs)
    guarded.gattn_guarded = True
    page.__dict__['decode'] = guarded


def undeclared_image(series) -> Optional[str]:
    """Why the first series of a TIFF holds no image, or None: its page gives no
    height and width (no tags, or 0), e.g. an IFD without entries."""
    if 0 in series.shape or not {'Y', 'X'} <= set(series.axes):
        return (f'a TIFF whose first page declares no image (axes {series.axes!r}, shape '
                f'{series.shape}: its width, height or samples tags are missing or 0)')
    return None


def guard_series(series) -> None:
    """:func:`guard_decoding` for every page of a series' levels (their keyframes)."""
    for level in series.levels:
        pages = [level.keyframe] + [p for p in level.pages if p is not None]
        for page in pages:
            if hasattr(page, '__dict__') and hasattr(page, 'compression'):
                guard_decoding(page)


def embedded_size(compression: int, data: bytes) -> Optional[Tuple[int, int]]:
    """(h, w) an image-coded segment says it decodes to, from its own header; None
    when the header gives none."""
    if compression not in JPEG:  # JPEG's frame header may follow long tables
        data = bytes(data[:1 << 16])
    try:
        if compression in JPEG:
            return _jpeg_size(data)
        if compression == PNG:
            if data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR':
                w, h = struct.unpack('>II', data[16:24])
                return h, w
            return None
        if compression == WEBP:
            return _webp_size(data)
        return _jpeg2000_size(data)
    except (struct.error, IndexError):
        return None


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    if data[:2] != b'\xff\xd8':
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header
            return None
        length = struct.unpack('>H', data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack('>HH', data[i + 5:i + 9])
            return (h, w) if h else None  # 0: defined later by a DNL marker
        i += 2 + length
    return None


def _webp_size(data: bytes) -> Optional[Tuple[int, int]]:
    if data[:4] != b'RIFF' or data[8:12] != b'WEBP':
        return None
    kind, body = data[12:16], data[20:]
    if kind == b'VP8 ' and body[3:6] == b'\x9d\x01\x2a':
        w, h = struct.unpack('<HH', body[6:10])
        return h & 0x3FFF, w & 0x3FFF
    if kind == b'VP8L' and body[:1] == b'\x2f':
        bits = int.from_bytes(body[1:5], 'little')
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if kind == b'VP8X':
        return int.from_bytes(body[7:10], 'little') + 1, int.from_bytes(body[4:7], 'little') + 1
    return None


def _jpeg2000_size(data: bytes) -> Optional[Tuple[int, int]]:
    i = data.find(b'\xff\x4f\xff\x51')  # codestream: SOC, SIZ (also inside a JP2 box)
    if i < 0:
        return None
    xsiz, ysiz, xo, yo = struct.unpack('>IIII', data[i + 8:i + 24])
    return ysiz - yo, xsiz - xo
