"""A TIFF's colour model (its PhotometricInterpretation tag) read to what
:func:`~gattn_mm.datasets.transforms.image_reading.to_rgb_uint8` takes: gray, gray +
alpha, RGB or RGBA. tifffile decodes the stored samples as they are: a CMYK, YCbCr,
CIELab or palette TIFF would otherwise be read with its C, M, Y (or Y, Cb, Cr, or
palette indices) as R, G, B. Models with no defined RGB (CFA, LogLuv, several inks,
...) are refused by name, before decoding."""
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

# PhotometricInterpretation values (TIFF 6.0, section 8 and the TIFF Technical Notes)
MINISWHITE, MINISBLACK, RGB, PALETTE, MASK, SEPARATED, YCBCR = 0, 1, 2, 3, 4, 5, 6
CIELAB, ICCLAB, ITULAB = 8, 9, 10
READ = {MINISWHITE: 'MinIsWhite gray', MINISBLACK: 'gray', RGB: 'RGB',
        PALETTE: 'palette', SEPARATED: 'CMYK', YCBCR: 'YCbCr', CIELAB: 'CIELab',
        ICCLAB: 'ICCLab'}
JPEG_COMPRESSIONS = (6, 7, 33007, 34892)  # tifffile decodes their YCbCr to RGB
COLOUR_SAMPLES = {PALETTE: 1, SEPARATED: 4, YCBCR: 3, CIELAB: 3, ICCLAB: 3}
INKSET_TAG = 332  # InkSet: 1 = CMYK (the default), 2 = other inks


class TiffColourError(ValueError):
    """The TIFF's colour model is not read (the message names it)."""


class ColourModel(NamedTuple):
    """What decides the colours of a TIFF page, read from its tags (no file handle:
    it pickles with a slide)."""
    photometric: int
    bitspersample: int
    samplesperpixel: int
    extrasamples: Tuple[int, ...]
    compression: int
    inkset: int
    colormap: Optional[np.ndarray]
    coefficients: Tuple[float, ...]  # YCbCrCoefficients (luma red, green, blue)
    reference: Optional[Tuple[float, ...]]  # ReferenceBlackWhite

    @classmethod
    def of(cls, page) -> 'ColourModel':
        """The colour model of a tifffile page."""
        photometric = int(page.photometric)
        return cls(photometric, int(page.bitspersample), int(page.samplesperpixel),
                   tuple(int(e) for e in (page.extrasamples or ())), int(page.compression),
                   int(page.tags.valueof(INKSET_TAG, 1)),
                   None if page.colormap is None or photometric != PALETTE
                   else np.asarray(page.colormap),
                   tuple(rationals(page, 529, (0.299, 0.587, 0.114))),
                   None if 532 not in page.tags else tuple(rationals(page, 532, (0.0,) * 6)))


def photometric_name(value: int) -> str:
    try:
        from tifffile import PHOTOMETRIC
        return f'{PHOTOMETRIC(value).name} ({value})'
    except ValueError:
        return str(value)


def check_colour_model(model: 'ColourModel') -> int:
    """The colour samples of ``model`` (a :class:`ColourModel`), checked from its tags
    before anything is decoded.

    Raises:
        TiffColourError: for a colour model with no RGB here (named), a CMYK TIFF of
            other inks, or fewer samples than the model needs.
    """
    photometric = int(model.photometric)
    if photometric not in READ:
        raise TiffColourError(
            f'its colour model (PhotometricInterpretation {photometric_name(photometric)}) '
            f'is not read: gattn-mm reads {", ".join(READ.values())} TIFFs; convert it to '
            f'RGB')
    if photometric == SEPARATED:
        inkset = model.inkset
        if int(inkset) != 1:
            raise TiffColourError(f'a separated TIFF of an ink set other than CMYK (InkSet '
                                  f'{inkset}); convert it to RGB')
    needed = COLOUR_SAMPLES.get(photometric, 1)
    stored = int(model.samplesperpixel) - len(model.extrasamples)
    if photometric in COLOUR_SAMPLES and stored != needed:
        raise TiffColourError(f'a {READ[photometric]} TIFF of {stored} colour samples per '
                              f'pixel (expected {needed}); convert it to RGB')
    return needed


def to_unit(x: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned integers of ``bits`` bits, or floats in [0, 1], as float32 in [0, 1]."""
    if x.dtype.kind == 'f':
        return np.clip(x.astype(np.float32), 0, 1)
    if x.dtype.kind != 'u':
        raise TiffColourError(f'{x.dtype} samples in a colour model of unsigned ones')
    return x.astype(np.float32) / float(2 ** bits - 1)


def stored_bits(model: ColourModel, img: np.ndarray) -> int:
    """Bits per sample as stored (a 12-bit TIFF decodes to uint16 of 0..4095)."""
    bits = int(model.bitspersample)
    return bits if 0 < bits <= img.dtype.itemsize * 8 else img.dtype.itemsize * 8


def tiff_to_rgb(img: np.ndarray, model: ColourModel) -> np.ndarray:
    """``img`` as tifffile decoded the page of colour ``model`` ((H, W) or (H, W, S),
    samples last), in gray / gray + alpha / RGB / RGBA for ``to_rgb_uint8``: integer
    samples of fewer bits than their dtype widened to it (12-bit to 0..65535), MinIsWhite
    inverted,
    palette indices looked up, CMYK, YCbCr and CIELab / ICCLab turned into RGB (the
    alpha of those dropped). Raises ``TiffColourError`` as :func:`check_colour_model`."""
    needed = check_colour_model(model)
    photometric = int(model.photometric)
    bits = stored_bits(model, img)
    if photometric in (MINISBLACK, RGB, MINISWHITE):
        if img.dtype.kind == 'u' and bits < img.dtype.itemsize * 8:  # e.g. 4 or 12 bits
            top = np.iinfo(img.dtype).max
            img = (img.astype(np.float32) * (top / (2 ** bits - 1))).round().astype(img.dtype)
        if photometric == MINISWHITE:
            img = invert_first(img)
        return img
    colour = img[..., :needed] if img.ndim == 3 else img
    if photometric == PALETTE:
        return palette_rgb(colour.reshape(colour.shape[:2]), model)
    if photometric == SEPARATED:
        cmyk = to_unit(colour, bits)
        k = 1.0 - cmyk[..., 3:]
        return (1.0 - cmyk[..., :3]) * k  # float RGB in [0, 1]
    if photometric == YCBCR:
        if model.compression in JPEG_COMPRESSIONS:
            return colour  # the JPEG decoder gave RGB
        return ycbcr_rgb(colour, model, bits)
    return lab_rgb(colour, photometric, bits)


def invert_first(img: np.ndarray) -> np.ndarray:
    """MinIsWhite: 0 is white. The gray sample inverted (an alpha sample kept)."""
    gray = img[..., 0] if img.ndim == 3 else img
    if gray.dtype == np.bool_:
        inv = ~gray
    elif gray.dtype.kind == 'u':
        inv = np.iinfo(gray.dtype).max - gray
    elif gray.dtype.kind == 'f':
        inv = 1.0 - np.clip(gray, 0, 1)
    else:
        raise TiffColourError(f'a MinIsWhite TIFF of {gray.dtype} samples; expected '
                              f'unsigned integers, or floats in [0, 1]')
    if img.ndim == 2:
        return inv
    out = img.copy()
    out[..., 0] = inv
    return out


def palette_rgb(index: np.ndarray, model: ColourModel) -> np.ndarray:
    """Palette indices looked up in the TIFF's ColorMap: (H, W, 3) uint8."""
    cmap = model.colormap
    if cmap is None:
        raise TiffColourError('a palette TIFF without a ColorMap')
    cmap = np.asarray(cmap)
    # the ColorMap is 16-bit (v * 257 or v << 8 of 8-bit v); some writers put 8-bit there
    table = cmap if cmap.max() <= 255 else cmap.astype(np.uint16) >> 8
    table = np.ascontiguousarray(table.astype(np.uint8).T)  # (entries, 3)
    if index.dtype.kind not in 'ub' or int(index.max(initial=0)) >= len(table):
        raise TiffColourError(f'palette indices up to {int(index.max(initial=0))} for a '
                              f'ColorMap of {len(table)} entries')
    return table[index.astype(np.intp)]


def ycbcr_rgb(ycc: np.ndarray, model: ColourModel, bits: int) -> np.ndarray:
    """YCbCr by the TIFF's YCbCrCoefficients and ReferenceBlackWhite (defaults: CCIR
    601 full range): float RGB in [0, 1]."""
    top, half = float(2 ** bits - 1), float(2 ** (bits - 1))
    red, green, blue = model.coefficients
    ref = model.reference or (0.0, top, half, top, half, top)
    x = ycc.astype(np.float32)
    y = (x[..., 0] - ref[0]) * (top / max(ref[1] - ref[0], 1e-6))
    cb = (x[..., 1] - ref[2]) * ((half - 1) / max(ref[3] - ref[2], 1e-6))
    cr = (x[..., 2] - ref[4]) * ((half - 1) / max(ref[5] - ref[4], 1e-6))
    r = cr * (2 - 2 * red) + y
    b = cb * (2 - 2 * blue) + y
    g = (y - blue * b - red * r) / green
    return np.clip(np.stack([r, g, b], axis=-1) / top, 0, 1)


def rationals(page, code: int, default: tuple) -> list:
    """A tag of RATIONALs as floats (tifffile may give numerator, denominator pairs)."""
    values = [float(v) for v in np.ravel(page.tags.valueof(code, default))]
    if len(values) == 2 * len(default):
        values = [n / d if d else 0.0 for n, d in zip(values[::2], values[1::2])]
    if len(values) != len(default):
        raise TiffColourError(f'tag {code} holds {len(values)} values, expected '
                              f'{len(default)}')
    return values


def lab_rgb(lab: np.ndarray, photometric: int, bits: int) -> np.ndarray:
    """CIELab (a*, b* signed) or ICCLab (a*, b* offset by half the range) of 8 or 16 bits:
    float sRGB in [0, 1] (OpenCV's conversion, D65 white)."""
    if bits not in (8, 16) or lab.dtype.kind not in 'ui':
        raise TiffColourError(f'a Lab TIFF of {bits}-bit {lab.dtype} samples; expected 8 '
                              f'or 16-bit integers')
    unsigned = lab.view(np.uint8 if bits == 8 else np.uint16)
    top = float(2 ** bits - 1)
    light = unsigned[..., 0].astype(np.float32) * (100.0 / top)
    if photometric == CIELAB:
        ab = unsigned[..., 1:].view(np.int8 if bits == 8 else np.int16).astype(np.float32)
    else:
        ab = unsigned[..., 1:].astype(np.float32) - 2 ** (bits - 1)
    ab /= 1.0 if bits == 8 else 256.0
    rgb = cv2.cvtColor(np.dstack([light, ab]).astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0, 1)
