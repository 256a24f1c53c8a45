"""Reading one image file as a viewer shows it, or refusing it by name: formats told by
content, pixel and byte budgets checked from the header, scientific intensities."""
import os.path as osp
from typing import Optional

import cv2
import numpy as np

from .tiff_colour import ColourModel, TiffColourError, check_colour_model, tiff_to_rgb
from .tiff_decoding import TiffDecodeError, decoded_bytes, guard_series, undeclared_image


# What read_image reads (told by content, the name only picks files in a folder walk):
# each format and the file name extensions Pillow registers for it (BigTIFF's too).
FORMAT_EXTENSIONS = {
    'TIFF': ('.tif', '.tiff', '.btf', '.tf8'),  # tifffile
    'PNG': ('.png', '.apng'), 'JPEG': ('.jpg', '.jpeg', '.jpe', '.jfif'),  # Pillow
    'MPO': ('.mpo',), 'BMP': ('.bmp', '.dib'), 'GIF': ('.gif',), 'WEBP': ('.webp',),
}
IMG_EXTENSIONS = tuple(e for exts in FORMAT_EXTENSIONS.values() for e in exts)


# Pixel budget of one image, checked from the file header before decoding: Pillow's
# own decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS), about 13,400^2 pixels.
DEFAULT_MAX_PIXELS = 178_956_970
# Decoded-size budget: at most as many bytes as an 8-bit RGBA image of the pixel budget
# (Pillow's modes never need more); a TIFF of wider samples (16-bit RGB, floats) can.
BYTES_PER_PIXEL = 4
# What Pillow may decode: raster formats only (an EPS named x.png would run Ghostscript).
# MPO (a JPEG and its previews) opens through the JPEG plugin and is read as JPEG.
PILLOW_FORMATS = tuple(f for f in FORMAT_EXTENSIONS if f not in ('TIFF', 'MPO'))


class ImageReadError(IOError):
    """An image file is missing, truncated, too large or not a 2-D image."""


def read_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a microscopy image as (H, W, 3) uint8 RGB at full resolution.

    TIFF (tifffile) and PNG/JPEG/BMP/GIF/WebP (Pillow), told apart by the file's
    content, not its name; other formats (EPS, PDF, ...) are refused before any decoder
    runs. One 2-D image per file: gray, gray + alpha, RGB or RGBA (alpha
    dropped); a TIFF's channel axis is the one its tags name (tifffile's ``S`` axis),
    never guessed from the shape; its colour model (PhotometricInterpretation) is read
    to RGB: MinIsWhite, palette, CMYK, YCbCr, CIELab / ICCLab (others, e.g. CFA or
    LogLuv, are refused by name; see :mod:`.tiff_colour`), samples of fewer bits than
    their type (12-bit in uint16) widened to it. A TIFF holding a stack (several pages
    or images, z, time or channel axes) or an animated GIF/PNG/WebP is refused, never
    read as its first frame or as colour. A JPEG's (or PNG's) EXIF orientation is applied, as
    mmcv and OpenCV do, so the image is the way a viewer shows it.
    Intensities: see :func:`to_rgb_uint8`.

    Args:
        path (str): the file.
        max_pixels (int): refuse images of more pixels (H x W), or of more than
            ``BYTES_PER_PIXEL * max_pixels`` bytes decoded (H x W x samples x bytes per
            sample), both checked from the header before anything is decoded; a TIFF's
            whole tiles (or strips) count, and none decodes beyond its declared size
            (:mod:`.tiff_decoding`: bombs, a tile's JPEG larger than the tile).

    Raises:
        ImageReadError: naming ``path`` when it cannot be read completely, is over
            ``max_pixels``, is of a format not in ``PILLOW_FORMATS`` (nor TIFF), holds
            a stack, several frames or more than 4 channels, or values of a dtype or
            range that :func:`to_rgb_uint8` does not read.
    """
    if not osp.isfile(path):
        raise ImageReadError(f'image file not found: {path}')
    try:
        img = _read_tiff(path, max_pixels) if _is_tiff(path) else \
            _read_pillow(path, max_pixels)
        return to_rgb_uint8(img, path, channels_last=True)
    except ImageReadError:
        raise
    except TiffDecodeError as err:
        raise ImageReadError(f'{path}: {err}') from None
    except Exception as err:  # noqa: BLE001  (PIL/tifffile/numpy raise many types)
        raise ImageReadError(f'cannot read image {path}: {type(err).__name__}: {err}') from err


TIFF_MAGIC = (b'II*\0', b'MM\0*', b'II+\0', b'MM\0+')  # classic and BigTIFF
ONE_IMAGE = 'gattn-mm reads one 2-D gray/RGB/RGBA image per file'
SAVE_ONE = 'save one plane or a projection (e.g. tifffile.imwrite(out, stack.max(axis=0)))'


def _is_tiff(path: str) -> bool:
    """Whether the file starts with a TIFF header, whatever its name."""
    with open(path, 'rb') as f:
        return f.read(4) in TIFF_MAGIC


def _check_pixels(path: str, h: int, w: int, max_pixels: int) -> None:
    if h * w > max_pixels:
        raise ImageReadError(
            f'{path}: {w} x {h} = {h * w:,} pixels is over the limit of {max_pixels:,} '
            f'(checked before decoding); raise it with LoadMicroscopyImage(max_pixels=...) '
            f'or --max-pixels if the file is trusted and fits in memory')


def _check_bytes(path: str, shape: tuple, dtype: np.dtype, max_pixels: int) -> None:
    size = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    if size > BYTES_PER_PIXEL * max_pixels:
        raise ImageReadError(
            f'{path}: {shape} of {np.dtype(dtype)} decodes to {size:,} bytes, over the '
            f'limit of {BYTES_PER_PIXEL * max_pixels:,} ({BYTES_PER_PIXEL} bytes per pixel '
            f'of the {max_pixels:,}-pixel budget, checked before decoding); raise it with '
            f'LoadMicroscopyImage(max_pixels=...) or --max-pixels if the file is trusted')


def _check_tiff_header(path: str, series, kept: str, max_pixels: int) -> tuple:
    """The shape to read (the axes of ``kept``), checked against the budget and the
    colour model (refused by name when not read)."""
    axes, shape = series.axes, series.shape
    shape = tuple(int(n) for a, n in zip(axes, shape) if a in kept)
    samples = shape[kept.index('S')] if 'S' in kept else 1
    try:
        colours = check_colour_model(ColourModel.of(series.keyframe))
    except TiffColourError as err:
        raise ImageReadError(f'{path}: {err}') from None
    if samples > max(4, colours + 1):  # CMYK + alpha: 5
        raise ImageReadError(f'{path}: expected a gray, gray + alpha, RGB or RGBA image, '
                             f'got shape {shape} ({samples} samples per pixel, refused '
                             f'before decoding)')
    _check_pixels(path, shape[kept.index('Y')], shape[kept.index('X')], max_pixels)
    _check_bytes(path, shape, series.dtype, max_pixels)
    _check_tiles(path, series.keyframe, max_pixels)
    return shape


def _check_tiles(path: str, page, max_pixels: int) -> None:
    """A TIFF is decoded in whole tiles (or strips): their pixels and bytes, not only
    the image's, count against the budget (a 512 px image stored as one 16384 px tile
    decodes 16384^2 pixels)."""
    if page.is_tiled:
        th, tw = int(page.tilelength), int(page.tilewidth)
        h, w = int(page.imagelength), int(page.imagewidth)
        decoded = -(-h // th) * th * -(-w // tw) * tw * max(1, int(page.tiledepth or 1))
        if decoded > max_pixels:
            raise ImageReadError(
                f'{path}: its {w} x {h} pixels are stored in {decoded // (th * tw)} tile(s) '
                f'of {tw} x {th}: decoding it decodes {decoded:,} pixels, over the limit of '
                f'{max_pixels:,} (the tiles decoded count, checked before decoding); re-tile '
                f'it (e.g. tile 256 x 256) or raise --max-pixels if the file is trusted')
    size = decoded_bytes(page)
    if size > BYTES_PER_PIXEL * max_pixels:
        raise ImageReadError(
            f'{path}: its {tuple(page.chunked)} segments (tiles or strips) of '
            f'{tuple(page.chunks)} samples decode to {size:,} bytes, over the limit of '
            f'{BYTES_PER_PIXEL * max_pixels:,} (checked before decoding); re-tile it or '
            f'raise --max-pixels if the file is trusted')


def _read_tiff(path: str, max_pixels: int) -> np.ndarray:
    """(H, W) or (H, W, S): the first series, its samples axis moved last. Refuses
    stacks, and files of several images (series) unless the first is a pyramid or the
    file an Aperio SVS, of one level or more (a slide: the others are its thumbnail,
    label and macro pictures)."""
    import tifffile
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise ImageReadError(f'{path}: a TIFF without any image (no pages); {ONE_IMAGE}')
        series = tif.series[0]
        axes, shape = series.axes, series.shape
        if (problem := undeclared_image(series)) is not None:
            raise ImageReadError(f'{path}: {problem}; {ONE_IMAGE}')
        kept = ''.join(a for a, n in zip(axes, shape) if n > 1 or a in 'YX')
        if kept not in ('YX', 'YXS', 'SYX'):
            raise ImageReadError(f'{path}: a TIFF stack (axes {axes}, shape {shape}, '
                                 f'{len(tif.pages)} pages); {ONE_IMAGE}: {SAVE_ONE}')
        if len(tif.series) > 1 and not (series.is_pyramidal or tif.is_svs):
            raise ImageReadError(f'{path}: a TIFF of {len(tif.series)} images '
                                 f'({len(tif.pages)} pages); {ONE_IMAGE}: {SAVE_ONE}')
        shape = _check_tiff_header(path, series, kept, max_pixels)  # before decoding
        guard_series(series)  # no strip or tile decodes beyond its declared size
        img = np.asarray(series.asarray()).reshape(shape)
        if kept == 'SYX':
            img = img.transpose(1, 2, 0)
        try:
            img = tiff_to_rgb(img, ColourModel.of(series.keyframe))  # CMYK, Lab, ...: RGB
        except TiffColourError as err:
            raise ImageReadError(f'{path}: {err}') from None
        if img.ndim == 3 and img.shape[-1] == 2 and \
                int(series.keyframe.extrasamples[0]) not in (1, 2):  # assoc/unassoc alpha
            raise ImageReadError(f'{path}: 2 channels, the second not marked as alpha; '
                                 f'expected a gray, gray + alpha, RGB or RGBA image')
        return img


def _detected_format(path: str) -> Optional[str]:
    """The Pillow format whose signature the file's first bytes match (None when none
    does): only the signatures are compared, no decoder runs."""
    from PIL import Image
    Image.init()
    with open(path, 'rb') as f:
        prefix = f.read(16)
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is not None and accept(prefix):
                return fmt
        except Exception:  # noqa: BLE001  (a signature check that fails is no match)
            pass
    return None


def _open_raster(path: str):
    """``Image.open`` restricted to ``PILLOW_FORMATS``; another format is refused."""
    from PIL import Image, UnidentifiedImageError
    try:
        return Image.open(path, formats=PILLOW_FORMATS)
    except UnidentifiedImageError:
        fmt = _detected_format(path)
        if fmt in PILLOW_FORMATS:
            raise  # a damaged file of a format read here: read_image names it
        what = f'its content is {fmt}' if fmt else 'the file is empty' if \
            osp.getsize(path) == 0 else 'its content is no image format known'
        raise ImageReadError(f'{path}: {what}; gattn-mm reads TIFF and '
                             f'{", ".join(PILLOW_FORMATS)} (told by the content, not the '
                             f'name) and hands no other format to a decoder') from None


def _read_pillow(path: str, max_pixels: int) -> np.ndarray:
    """(H, W) or (H, W, 3|4) as a viewer shows it (EXIF orientation applied)."""
    from PIL import Image, ImageOps
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(max_pixels // 2, limit or 0)  # our check comes first
    try:
        with _open_raster(path) as im:
            _check_pixels(path, im.size[1], im.size[0], max_pixels)
            frames = getattr(im, 'n_frames', 1)
            if frames > 1 and im.format != 'MPO':  # MPO: a JPEG and its previews
                raise ImageReadError(f'{path}: an animated {im.format} of {frames} frames; '
                                     f'{ONE_IMAGE}: save one frame')
            im.load()  # raises on truncated data
            ImageOps.exif_transpose(im, in_place=True)
            if im.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
                return np.asarray(im).astype(np.uint16 if im.mode != 'I' else np.int32)
            if im.mode in ('L', 'RGB', 'RGBA'):
                return np.asarray(im)
            return np.asarray(im.convert('RGB'))
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def to_rgb_uint8(img: np.ndarray, path: str = '<array>',
                 channels_last: bool = False) -> np.ndarray:
    """(H, W) or (H, W, 1|2|3|4) of a bool, integer or float dtype -> (H, W, 3) uint8.

    Channels: gray, gray + alpha, RGB or RGBA; alpha is dropped. An array that is not
    ``channels_last`` (a reader passes True: it knows the layout) is taken as channels
    first, (1|3|4, H, W), only when its last axis cannot be channels (more than 4).

    Intensity rules: uint8 as is; other integer types scaled by their dtype range
    (uint16: / 257), except signed/32-bit integers above 255, scaled by the image's
    maximum; negative values of a signed integer type are refused (there is no black
    level to assume: save such data as float to have it mapped from its own range);
    floats in [0, 1] scaled by 255, other floats (raw intensities) mapped linearly
    from the image's own [min, max] to [0, 255]; NaN or infinity is refused; other
    dtypes (complex, strings, objects) are refused.
    """
    if img.dtype.kind not in 'biuf':
        raise ImageReadError(f'{path}: pixels of dtype {img.dtype} are not read; expected '
                             f'bool, unsigned or signed integers or floats')
    if not channels_last and img.ndim == 3 and img.shape[0] in (1, 3, 4) and \
            img.shape[-1] > 4:
        img = img.transpose(1, 2, 0)  # channel-first
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or not 1 <= img.shape[-1] <= 4:
        raise ImageReadError(f'{path}: expected a gray, gray + alpha, RGB or RGBA image, '
                             f'got shape {img.shape}')
    if not img.shape[0] or not img.shape[1]:
        raise ImageReadError(f'{path}: an empty image ({img.shape[1]} x {img.shape[0]} '
                             f'pixels, shape {img.shape}); expected at least 1 x 1')
    img = img[..., :3] if img.shape[-1] == 4 else img[..., :1] if img.shape[-1] == 2 else img
    if img.shape[-1] == 1:  # gray: cv2 widens uint8 >10x faster than np.repeat
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_GRAY2RGB) \
            if img.dtype == np.uint8 else np.repeat(img, 3, axis=-1)
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.uint16:
        return (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise ImageReadError(f'{path}: the image holds NaN or infinite values')
        lo, hi = float(img.min()), float(img.max())
        if lo < 0 or hi > 1:  # raw intensities: the image's own range
            img = (img - lo) / max(hi - lo, 1e-12)
        return (img * 255).round().astype(np.uint8)
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if img.dtype.kind == 'i' and img.min() < 0:
        raise ImageReadError(f'{path}: {img.dtype} with negative values (min {img.min()}); '
                             f'expected values >= 0 (shift them, or save the image as '
                             f'float to have it mapped from its own [min, max])')
    scale = 255.0 / max(int(img.max()), 1) if img.max() > 255 else 1.0
    return (img * scale).round().astype(np.uint8)
