import numpy as np

from ..transforms.loading import DEFAULT_MAX_PIXELS
from .base import Slide, SlideError
from .pixel_size import openslide_mpp


class OpenSlideSlide(Slide):
    """A slide in an OpenSlide format (Aperio SVS, Hamamatsu NDPI, MIRAX, ...), read
    with openslide-python. Transparent pixels (outside the scanned area) are white.

    Needs the ``slides`` extra (``pip install openslide-python openslide-bin``, which
    ``make venv`` installs).
    """

    def __init__(self, path: str, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__(path, max_pixels)
        self._handle = None
        self._open()

    def _open(self):
        if self._handle is not None:
            return self._handle
        try:
            import openslide
        except ImportError as err:
            raise SlideError(
                f'{self.path}: an OpenSlide format, and openslide-python is not installed: '
                f'pip install openslide-python openslide-bin (the gattn-mm[slides] extra), '
                f'or convert the slide to a tiled pyramidal TIFF ({err})') from err
        try:
            self._handle = openslide.OpenSlide(self.path)
        except Exception as err:  # noqa: BLE001
            raise SlideError(f'cannot open slide {self.path}: {type(err).__name__}: '
                             f'{err}') from err
        self.level_shapes = [(int(h), int(w)) for w, h in self._handle.level_dimensions]
        props = self._handle.properties  # the tiles OpenSlide decodes, where it says
        self.chunk_shapes = [
            (int(props[f'openslide.level[{i}].tile-height']),
             int(props[f'openslide.level[{i}].tile-width']))
            if f'openslide.level[{i}].tile-height' in props and
            f'openslide.level[{i}].tile-width' in props else None
            for i in range(len(self.level_shapes))]
        self.mpp, self.mpp_source = openslide_mpp(props)
        return self._handle

    def _read(self, level: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        slide = self._open()
        dy, dx = self.downsample(level)
        rgba = np.asarray(slide.read_region((int(round(x0 * dx)), int(round(y0 * dy))), level,
                                            (x1 - x0, y1 - y0)))
        alpha = rgba[..., 3:].astype(np.float32) / 255.0
        rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        return rgb.round().astype(np.uint8)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
