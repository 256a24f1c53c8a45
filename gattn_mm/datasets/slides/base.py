import os.path as osp
import warnings
from typing import List, Optional, Tuple

import numpy as np

from ...utils.pyramid import level_covering, level_within
from ..transforms.image_reading import FORMAT_EXTENSIONS, IMG_EXTENSIONS
from ..transforms.loading import DEFAULT_MAX_PIXELS, ImageReadError

# Formats read through OpenSlide (the ``slides`` extra: openslide-python + openslide-bin)
OPENSLIDE_EXTENSIONS = ('.svs', '.ndpi', '.mrxs', '.scn', '.vms', '.vmu', '.bif', '.svslide')
TIFF_EXTENSIONS = FORMAT_EXTENSIONS['TIFF']
# Every file name a reader of gattn-mm takes (read_image's formats and the slides'):
# what a folder of inputs is searched for
READABLE_EXTENSIONS = IMG_EXTENSIONS + OPENSLIDE_EXTENSIONS


class SlideError(ImageReadError):
    """A slide file is missing, truncated, of an unsupported format or has no usable
    pyramid; the message names the file and what was expected."""


class Slide:
    """A whole-slide image: a pyramid of levels, read region by region.

    Level 0 is the full resolution; level ``l`` is (h_l, w_l) pixels, a downsample of
    about ``level_0 / level_l`` per axis. Regions come back as (h, w, 3) uint8 RGB. A
    slide pickles as its path (for data loader workers) and reopens on first use.
    No read decodes more than ``max_pixels``: a whole level or region over it is
    refused, and :meth:`level_covering` chooses only levels within it. The pixels a
    read decodes are counted as the file stores them: whole tiles (or strips) of
    ``chunk_shapes``, not only the region asked for (a 512 px level stored as one
    16384 px tile decodes 16384^2 pixels for any read of it).

    Args:
        path (str): the file.
        max_pixels (int): the most pixels one read (a region, or a level read whole)
            may have.
    """

    def __init__(self, path: str, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.path = path
        self.max_pixels = int(max_pixels)
        self.level_shapes: List[Tuple[int, int]] = []  # (h, w) per level
        # (h, w) of the tiles (or strips) each level is decoded by; None: unknown
        self.chunk_shapes: List[Optional[Tuple[int, int]]] = []
        self.slow: Optional[str] = None  # why reads are slow (open_slide warns), if so
        # (y, x) µm per level-0 pixel from the metadata (pixel_size.py), or None and why
        self.mpp: Optional[Tuple[float, float]] = None
        self.mpp_source = 'not read'

    @property
    def shape(self) -> Tuple[int, int]:
        """(h, w) of level 0."""
        return self.level_shapes[0]

    def pixel_size(self) -> Tuple[float, float]:
        """(y, x) µm per level-0 pixel, from the slide's metadata.

        Raises:
            SlideError: naming the file, when its metadata give none (or an
                implausible one) and why.
        """
        if self.mpp is None:
            raise SlideError(
                f'{self.path}: no pixel size in its metadata ({self.mpp_source}); a size '
                f'in µm needs openslide.mpp-x/y, an Aperio MPP or TIFF resolution tags in '
                f'inch/cm. Set them (e.g. tifffile resolution=, vips tiffsave --xres), or '
                f'give the size in pixels (sampler.box_size)')
        return self.mpp

    def downsample(self, level: int) -> Tuple[float, float]:
        """(dy, dx): level-0 pixels per pixel of ``level``."""
        (h0, w0), (h, w) = self.level_shapes[0], self.level_shapes[level]
        return h0 / h, w0 / w

    def level_for(self, downsample: float) -> int:
        """The coarsest level whose downsample is at most ``downsample``."""
        return level_within(self.level_shapes, downsample)

    def level_covering(self, size: Tuple[int, int]) -> int:
        """The coarsest level at least ``size`` (h, w) among those within
        ``max_pixels`` (to be read whole), else the finest of those (then enlarged)."""
        costs = [self.decoded_pixels(level, 0, 0, h, w)
                 for level, (h, w) in enumerate(self.level_shapes)]
        return level_covering(self.level_shapes, size, self.max_pixels, costs)

    def decoded_pixels(self, level: int, y0: int, x0: int, y1: int, x1: int) -> int:
        """The pixels decoded to read [y0:y1, x0:x1] of ``level``: the whole tiles (or
        strips) it overlaps, as the file stores them (the region itself when the
        layout is unknown)."""
        chunk = self.chunk_shapes[level] if level < len(self.chunk_shapes) else None
        if not chunk or y1 <= y0 or x1 <= x0:
            return max(0, y1 - y0) * max(0, x1 - x0)
        th, tw = chunk
        return ((y1 - 1) // th - y0 // th + 1) * th * ((x1 - 1) // tw - x0 // tw + 1) * tw

    def check_decoded(self, level: int, y0: int, x0: int, y1: int, x1: int) -> None:
        """Raise ``SlideError`` when reading the region would decode more than
        ``max_pixels`` (counted by :meth:`decoded_pixels`), before anything is read."""
        decoded = self.decoded_pixels(level, y0, x0, y1, x1)
        if decoded > self.max_pixels:
            th, tw = self.chunk_shapes[level]
            raise SlideError(
                f'{self.path}: level {level} region [{y0}:{y1}, {x0}:{x1}] decodes '
                f'{decoded // (th * tw)} tile(s) of {tw} x {th} = {decoded:,} pixels, over the '
                f'limit of {self.max_pixels:,} for one read (the tiles decoded count, not '
                f'the region asked for); re-tile it (e.g. vips tiffsave IN out.tif --tile '
                f'--tile-width 256 --tile-height 256 --pyramid) or raise max_pixels if it '
                f'fits in memory')

    def read(self, level: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        """The region of ``level`` from (top, left), clipped to the level: (h, w, 3)
        uint8 RGB."""
        h, w = self.level_shapes[level]
        y0, x0 = max(0, int(top)), max(0, int(left))
        y1, x1 = min(h, int(top) + int(height)), min(w, int(left) + int(width))
        if y1 <= y0 or x1 <= x0:
            return np.zeros((0, 0, 3), np.uint8)
        if (y1 - y0) * (x1 - x0) > self.max_pixels:
            raise SlideError(
                f'{self.path}: level {level} region [{y0}:{y1}, {x0}:{x1}] is {x1 - x0} x '
                f'{y1 - y0} = {(y1 - y0) * (x1 - x0):,} pixels, over the limit of '
                f'{self.max_pixels:,} for one read; raise max_pixels if it fits in memory')
        self.check_decoded(level, y0, x0, y1, x1)
        try:
            return self._read(level, y0, x0, y1, x1)
        except SlideError:
            raise
        except Exception as err:  # noqa: BLE001  (codecs and stores raise many types)
            raise SlideError(f'{self.path}: cannot read level {level} region '
                             f'[{y0}:{y1}, {x0}:{x1}]: {type(err).__name__}: {err}') from err

    def _read(self, level: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle (reopened on the next read)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_handle'] = None
        return state

    def __repr__(self):
        return f'{type(self).__name__}({self.path!r}, levels={self.level_shapes})'


def open_slide(path: str, max_pixels: int) -> Slide:
    """Open ``path`` as a :class:`Slide`: TIFF / OME-TIFF with tifffile (and zarr),
    the OpenSlide formats with openslide-python.

    Args:
        path (str): the file.
        max_pixels (int): the most pixels one read may decode (a level read whole, or a
            region); a slide whose smallest level is larger is refused (there is no level
            to glance at).

    Raises:
        SlideError: naming ``path``.
    """
    from .openslide_slide import OpenSlideSlide
    from .tiff_slide import TiffSlide
    if not osp.isfile(path):
        raise SlideError(f'slide file not found: {path}')
    lower = path.lower()
    if lower.endswith(OPENSLIDE_EXTENSIONS):
        slide = OpenSlideSlide(path, max_pixels)
    elif lower.endswith(TIFF_EXTENSIONS):
        slide = TiffSlide(path, max_pixels)
    else:
        raise SlideError(f'{path}: not a slide format gattn-mm reads (TIFF/OME-TIFF: '
                         f'{", ".join(TIFF_EXTENSIONS)}; with openslide-python: '
                         f'{", ".join(OPENSLIDE_EXTENSIONS)})')
    h, w = slide.level_shapes[-1]
    if h * w > max_pixels:
        slide.close()
        kind = ('has no pyramid' if len(slide.level_shapes) == 1 else
                f'has no level under {max_pixels:,} pixels')
        raise SlideError(
            f'{path}: {slide.shape[1]} x {slide.shape[0]} and {kind} (smallest level '
            f'{w} x {h}); gattn-mm reads slides lazily from a tiled pyramid. Convert it, '
            f'e.g. `vips tiffsave {osp.basename(path)} out.tif --tile --pyramid '
            f'--compression deflate`, or raise max_pixels if it fits in memory')
    try:  # the smallest level is read whole (thumbnail, glance): its tiles within budget
        slide.check_decoded(len(slide.level_shapes) - 1, 0, 0, h, w)
    except SlideError:
        slide.close()
        raise
    if slide.slow:
        warnings.warn(f'{path}: {slide.slow}')
    return slide
