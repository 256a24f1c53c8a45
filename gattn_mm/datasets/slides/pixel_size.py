"""The physical size of a slide's level-0 pixel (µm per pixel) from its metadata.

Read, in order: OpenSlide's ``openslide.mpp-x`` / ``openslide.mpp-y`` (what OpenSlide
found for the vendor: Aperio, Hamamatsu, MIRAX, ...); an Aperio ``ImageDescription``'s
``MPP = ...``; the TIFF ``XResolution`` / ``YResolution`` tags with a
``ResolutionUnit`` of inch or centimetre (``NONE`` says nothing). Every value is
untrusted: a missing, malformed or implausible one gives no pixel size, with the reason.
"""
import math
import re
from typing import Mapping, Optional, Tuple

# µm per pixel a slide scanner or microscope gives (a 100x objective is ~0.05 µm/px);
# outside, a value is a default of the writer (72 dpi = 352.8 µm/px), not a scan's
MPP_RANGE = (0.01, 100.0)
UM_PER_UNIT = {2: 25400.0, 3: 10000.0}  # ResolutionUnit: inch, centimetre
APERIO_MPP = re.compile(r'(?:^|\|)\s*MPP\s*=\s*([0-9.eE+-]+)\s*(?:\||$)')

PixelSize = Tuple[Optional[Tuple[float, float]], str]  # ((y, x) µm/px or None, source)


def checked_mpp(y, x, source: str) -> PixelSize:
    """((y, x), source) when both are finite numbers within ``MPP_RANGE``, else
    (None, why not)."""
    try:
        y, x = float(y), float(x)
    except (TypeError, ValueError):
        return None, f'{source} is not a number ({y!r}, {x!r})'
    lo, hi = MPP_RANGE
    if not all(math.isfinite(v) and lo <= v <= hi for v in (y, x)):
        return None, (f'{source} gives {x:g} x {y:g} µm/px, outside {lo:g}-{hi:g} µm/px '
                      f'(a default of the writer, not a scan resolution)')
    return (y, x), source


def resolution_mpp(xres, yres, unit) -> PixelSize:
    """From TIFF ``XResolution`` / ``YResolution`` (pixels per unit: a number or a
    (numerator, denominator) pair) and ``ResolutionUnit`` (2 / 'inch', 3 /
    'centimeter')."""
    if xres is None or yres is None:
        return None, 'no XResolution/YResolution tags'
    names = {'inch': 2, 'centimeter': 3, 'none': 1}
    unit = names.get(str(unit).lower(), unit) if unit is not None else 2  # TIFF default
    try:
        unit = int(unit)
    except (TypeError, ValueError):
        return None, f'ResolutionUnit {unit!r} is not a unit'
    if unit not in UM_PER_UNIT:
        return None, 'ResolutionUnit is NONE (no physical unit)'

    def per_unit(value) -> float:
        if isinstance(value, (tuple, list)):
            num, den = (float(v) for v in value)
            return num / den if den else math.nan
        return float(value)

    try:
        px_y, px_x = per_unit(yres), per_unit(xres)
    except (TypeError, ValueError):
        return None, f'XResolution {xres!r} / YResolution {yres!r} are not numbers'
    if not (px_y > 0 and px_x > 0):
        return None, f'XResolution {xres!r} / YResolution {yres!r} are not positive'
    return checked_mpp(UM_PER_UNIT[unit] / px_y, UM_PER_UNIT[unit] / px_x,
                       'the TIFF resolution tags')


def openslide_mpp(props: Mapping[str, str]) -> PixelSize:
    """From an OpenSlide handle's properties."""
    if 'openslide.mpp-x' in props and 'openslide.mpp-y' in props:
        return checked_mpp(props['openslide.mpp-y'], props['openslide.mpp-x'],
                           'openslide.mpp-x/y')
    if 'tiff.XResolution' in props:
        return resolution_mpp(props.get('tiff.XResolution'), props.get('tiff.YResolution'),
                              props.get('tiff.ResolutionUnit'))
    return None, 'no openslide.mpp-x/y or TIFF resolution properties'


def tiff_mpp(page) -> PixelSize:
    """From a tifffile page (level 0): an Aperio description's ``MPP``, else the
    resolution tags."""
    description = page.description if isinstance(page.description, str) else ''
    match = APERIO_MPP.search(description) if description.startswith('Aperio') else None
    if match:
        return checked_mpp(match.group(1), match.group(1), 'the Aperio description MPP')
    tags = page.tags

    def value(name):
        tag = tags.get(name)
        return None if tag is None else tag.value

    return resolution_mpp(value('XResolution'), value('YResolution'),
                          value('ResolutionUnit'))
