import os
from typing import List

import numpy as np

from ..transforms.loading import DEFAULT_MAX_PIXELS, to_rgb_uint8
from ..transforms.tiff_colour import (ColourModel, TiffColourError, check_colour_model,
                                      tiff_to_rgb)
from ..transforms.tiff_decoding import chunk_shape, guard_series, undeclared_image
from .base import Slide, SlideError
from .pixel_size import tiff_mpp


class TiffSlide(Slide):
    """A TIFF / OME-TIFF slide read with tifffile, each level through a zarr view of
    its tiles: a region decodes only the tiles it overlaps.

    Levels are those of the first series (SubIFDs or further pages, as tifffile finds
    them). Gray, RGB and RGBA of uint8 or uint16 (scaled by 1/257) are read; the file
    is checked when opened (every level's tiles lie inside the file, so a truncated
    file is refused here, not halfway through an inference). Colour models are read as
    :func:`~gattn_mm.datasets.transforms.read_image` reads them (CMYK, YCbCr, Lab and
    palette levels to RGB; another model is refused when the slide is opened).
    """

    def __init__(self, path: str, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__(path, max_pixels)
        self._handle = None
        try:
            self._open()
        except SlideError:
            raise
        except Exception as err:  # noqa: BLE001  (tifffile raises many types)
            raise SlideError(f'cannot open slide {path}: {type(err).__name__}: {err}') from err

    def _open(self) -> List:
        if self._handle is not None:
            return self._handle[1]
        import tifffile
        try:
            import zarr
        except ImportError as err:
            raise SlideError(f'{self.path}: reading a pyramidal TIFF lazily needs zarr: pip '
                             f'install zarr (the gattn-mm[slides] extra) ({err})') from err
        tif = tifffile.TiffFile(self.path)
        try:
            if not tif.series:
                raise SlideError(f'{self.path}: a TIFF without any image (no pages)')
            series = tif.series[0]
            if (problem := undeclared_image(series)) is not None:
                raise SlideError(f'{self.path}: {problem}')
            guard_series(series)  # no strip or tile decodes beyond its declared size
            size = os.path.getsize(self.path)
            shapes, arrays, pages, chunks = [], [], [], []
            for level, sub in enumerate(series.levels):
                axes = sub.axes.replace('I', '').replace('Q', '')
                if axes not in ('YX', 'YXS') or sub.dtype not in (np.uint8, np.uint16):
                    raise SlideError(
                        f'{self.path}: level {level} is {sub.dtype} with axes {sub.axes} '
                        f'{sub.shape}; slides are read as gray/RGB/RGBA uint8 or uint16 '
                        f'(axes YX or YXS)')
                page = sub.keyframe
                try:
                    pages.append(ColourModel.of(page))
                    check_colour_model(pages[-1])
                except TiffColourError as err:
                    raise SlideError(f'{self.path}: level {level}: {err}') from None
                ends = np.asarray(page.dataoffsets, np.int64) + \
                    np.asarray(page.databytecounts, np.int64)
                if ends.size and int(ends.max()) > size:
                    raise SlideError(
                        f'{self.path}: truncated: level {level} needs {int(ends.max()):,} '
                        f'bytes, the file has {size:,}')
                h, w = sub.shape[axes.index('Y')], sub.shape[axes.index('X')]
                shapes.append((int(h), int(w)))
                chunks.append(chunk_shape(page, int(h), int(w)))  # what a read decodes
                arrays.append(zarr.open_array(series.aszarr(level=level), mode='r'))
            if len(shapes) == 1 and not series.keyframe.is_tiled:
                self.slow = ('a TIFF without tiles or pyramid is read by strips, slowly; '
                             'convert it to a tiled pyramid (vips tiffsave ... --tile '
                             '--pyramid)')
        except Exception:
            tif.close()
            raise
        self.level_shapes = shapes
        self.chunk_shapes = chunks
        self.mpp, self.mpp_source = tiff_mpp(series.levels[0].keyframe)
        self._pages = pages
        self._handle = (tif, arrays)
        return arrays

    def _read(self, level: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        region = np.asarray(self._open()[level][y0:y1, x0:x1])  # (h, w) or (h, w, S)
        region = tiff_to_rgb(region, self._pages[level])  # CMYK, palette, ...: RGB
        return to_rgb_uint8(region, self.path, channels_last=True)  # the reader's rules

    def close(self) -> None:
        if self._handle is not None:
            self._handle[0].close()
            self._handle = None

