"""The physical size of a slide's level-0 pixel (µm per pixel) from its metadata.

Read, in order: OpenSlide's ``openslide.mpp-x`` / ``openslide.mpp-y`` (what OpenSlide
found for the vendor: Aperio, Hamamatsu, MIRAX, ...); an Aperio ``ImageDescription``'s
``MPP = ...``; an OME-TIFF's OME-XML ``Pixels`` ``PhysicalSizeX/Y`` (with their units,
µm by default); the TIFF ``XResolution`` / ``YResolution`` tags with a
``ResolutionUnit`` of inch or centimetre (``NONE`` says nothing). Every value is
untrusted: a missing, malformed or implausible one gives no pixel size, with the reason.
"""
import math
import re
import xml.etree.ElementTree as ET
from typing import Mapping, Optional, Tuple

# µm per pixel a slide scanner or microscope gives (a 100x objective is ~0.05 µm/px);
# outside, a value is a default of the writer (72 dpi = 352.8 µm/px), not a scan's
MPP_RANGE = (0.01, 100.0)
UM_PER_UNIT = {2: 25400.0, 3: 10000.0}  # ResolutionUnit: inch, centimetre
APERIO_MPP = re.compile(r'(?:^|\|)\s*MPP\s*=\s*([0-9.eE+-]+)\s*(?:\||$)')

# OME's UnitsLength symbols -> µm
OME_UM = {'µm': 1.0, 'um': 1.0, '\u03bcm': 1.0, 'nm': 1e-3, 'Å': 1e-4, 'pm': 1e-6,
          'mm': 1e3, 'cm': 1e4, 'm': 1e6}
OME_MAX_CHARS = 10_000_000  # a description beyond this is not parsed

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


def ome_mpp(description: str) -> PixelSize:
    """From an OME-XML description: the first ``Pixels`` element's ``PhysicalSizeX``
    / ``PhysicalSizeY`` and their ``PhysicalSizeXUnit`` / ``PhysicalSizeYUnit``
    (µm when absent)."""
    if len(description) > OME_MAX_CHARS:
        return None, f'the OME-XML description is over {OME_MAX_CHARS} characters'
    try:
        root = ET.fromstring(description)
    except ET.ParseError as e:
        return None, f'the OME-XML description does not parse ({e})'
    pixels = next((el for el in root.iter() if el.tag.rsplit('}', 1)[-1] == 'Pixels'), None)
    if pixels is None:
        return None, 'the OME-XML description has no Pixels element'
    sizes = []
    for axis in ('Y', 'X'):
        value = pixels.get(f'PhysicalSize{axis}')
        unit = pixels.get(f'PhysicalSize{axis}Unit', 'µm')
        if value is None:
            return None, f'the OME-XML Pixels element has no PhysicalSize{axis}'
        if unit not in OME_UM:
            return None, (f'the OME-XML PhysicalSize{axis}Unit {unit!r} is not a length '
                          f'unit of {sorted(OME_UM)}')
        try:
            sizes.append(float(value) * OME_UM[unit])
        except ValueError:
            return None, f'the OME-XML PhysicalSize{axis} {value!r} is not a number'
    return checked_mpp(sizes[0], sizes[1], 'the OME-XML PhysicalSizeX/Y')


def tiff_mpp(page) -> PixelSize:
    """From a tifffile page (level 0): an Aperio description's ``MPP``, an OME-XML
    description's physical size, else the resolution tags."""
    description = page.description if isinstance(page.description, str) else ''
    match = APERIO_MPP.search(description) if description.startswith('Aperio') else None
    if match:
        return checked_mpp(match.group(1), match.group(1), 'the Aperio description MPP')
    ome = None
    if description.lstrip().startswith('<') and '<OME' in description[:4096]:
        ome = ome_mpp(description.strip())
        if ome[0] is not None:
            return ome
    tags = page.tags

    def value(name):
        tag = tags.get(name)
        return None if tag is None else tag.value

    found = resolution_mpp(value('XResolution'), value('YResolution'),
                           value('ResolutionUnit'))
    return found if found[0] is not None or ome is None else (None, f'{ome[1]}; {found[1]}')
