"""Test data for the slide path: pyramidal TIFFs of any size with a few UCI digits at
known level-0 positions on a textured background (``tools/dataset_converters/
make_slide.py``).

The layout is drawn on a 512 px reference canvas, as a DigitBags bag (24 px digits),
and scaled to the slide's side: the same seed gives the same picture at 2,000 px and
at 60,000 px, so a model must give the same prediction for both. Every pyramid level
is rendered directly (no level is ever held whole in memory) and written tile by tile;
a tile without a digit is one pre-compressed tile repeated, so a 60,000^2 slide is
about 70 MB on disk and takes about a minute to write.
"""
import zlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .digitbags_generator import place_boxes, split_digit_pools

REFERENCE = 512  # side of the reference canvas of the layout (a DigitBags bag)
DIGIT = 24  # digit side on the reference canvas
BACKGROUND = 140  # DigitBags' background level (0.55)
STRIPES = 32  # period in level-0 pixels of the background's stripes
INK = 0.75  # share of the background a digit's ink darkens


@dataclass
class DigitSlideSpec:
    """Everything that decides the written bytes.

    Args:
        side (int): level-0 side of the square slide in pixels.
        labels (list[int]): the digits to plant (their classes).
        seed (int): chooses the glyphs (from DigitBags' test pool) and positions.
        tile (int): TIFF tile side.
        min_level (int): the pyramid stops before a level's side falls below this.
    """
    side: int
    labels: Sequence[int] = (9, 3, 5)
    seed: int = 0
    tile: int = 256
    min_level: int = 64

    def __post_init__(self):
        if self.side < self.min_level:
            raise ValueError(f'side={self.side} is below min_level={self.min_level}')
        if not 1 <= len(self.labels) <= 8 or not all(0 <= d <= 9 for d in self.labels):
            raise ValueError(f'labels must be 1 to 8 digits in 0-9, got {list(self.labels)}')
        if self.tile % 16:
            raise ValueError(f'tile must be a multiple of 16 (TIFF), got {self.tile}')


def level_sides(spec: DigitSlideSpec) -> List[int]:
    """The side of every pyramid level, level 0 first, each half the one before."""
    sides = [spec.side]
    while sides[-1] // 2 >= spec.min_level:
        sides.append(sides[-1] // 2)
    return sides


def choose_glyphs(spec: DigitSlideSpec) -> Tuple[List[np.ndarray], List[List[int]]]:
    """The glyphs (8x8 in [0, 16]) of ``spec.labels`` and their level-0 boxes (xyxy)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    pool = split_digit_pools(0)['test']
    rng = np.random.default_rng(spec.seed)
    glyphs = [digits.images[int(rng.choice(pool[digits.target[pool] == d]))]
              for d in spec.labels]
    scale = spec.side / REFERENCE
    boxes = [[int(round(v * scale)) for v in box]
             for box in place_boxes(rng, len(glyphs), REFERENCE, DIGIT, gap=8)]
    return glyphs, boxes


def _background_tile(spec: DigitSlideSpec, downsample: int, top: int) -> np.ndarray:
    """(tile, tile, 3) uint8 background whose first row is level row ``top``."""
    rows = (top + np.arange(spec.tile)) * downsample  # level-0 rows
    period = STRIPES / downsample
    value = BACKGROUND + (6 * np.sin(2 * np.pi * rows / STRIPES) if period >= 4 else 0 * rows)
    tile = np.repeat(np.round(value).astype(np.uint8)[:, None], spec.tile, axis=1)
    return np.repeat(tile[..., None], 3, axis=2)


def _tiles(spec: DigitSlideSpec, glyphs: List[np.ndarray], boxes: List[List[int]],
           downsample: int, side: int) -> Iterator[bytes]:
    """The zlib-compressed tiles of one level, row-major."""
    t = spec.tile
    inks = []
    for glyph, (x1, y1, x2, y2) in zip(glyphs, boxes):
        lx1, ly1 = x1 // downsample, y1 // downsample
        w, h = max(1, (x2 - x1) // downsample), max(1, (y2 - y1) // downsample)
        ink = cv2.resize((glyph / 16.0).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_LINEAR if w >= 8 else cv2.INTER_AREA)
        inks.append((lx1, ly1, np.clip(ink, 0, 1)))
    plain: Dict[int, bytes] = {}  # background tiles by their phase
    for ty in range(0, side, t):
        phase = (ty * downsample) % STRIPES
        if phase not in plain:
            plain[phase] = zlib.compress(_background_tile(spec, downsample, ty).tobytes(), 6)
        for tx in range(0, side, t):
            hits = [(x, y, ink) for x, y, ink in inks
                    if x < tx + t and x + ink.shape[1] > tx and y < ty + t and
                    y + ink.shape[0] > ty]
            if not hits:
                yield plain[phase]
                continue
            tile = _background_tile(spec, downsample, ty).astype(np.float32)
            for x, y, ink in hits:
                ys, xs = slice(max(y, ty), min(y + ink.shape[0], ty + t)), \
                    slice(max(x, tx), min(x + ink.shape[1], tx + t))
                part = ink[ys.start - y:ys.stop - y, xs.start - x:xs.stop - x, None]
                region = tile[ys.start - ty:ys.stop - ty, xs.start - tx:xs.stop - tx]
                region *= 1 - INK * part
            yield zlib.compress(np.round(tile).astype(np.uint8).tobytes(), 6)


def write_digit_slide(path: str, spec: DigitSlideSpec) -> dict:
    """Write a tiled, zlib-compressed pyramidal TIFF (level 0, then each reduced level
    as the next page, RGB uint8: the layout tifffile and OpenSlide's generic TIFF
    reader both read as a pyramid) of the digits of ``spec``.

    Returns:
        dict: ``boxes`` (level-0 xyxy of each digit), ``labels``, ``levels`` (sides).
    """
    import tifffile
    glyphs, boxes = choose_glyphs(spec)
    sides = level_sides(spec)
    opts = dict(dtype=np.uint8, tile=(spec.tile, spec.tile), photometric='rgb',
                compression='zlib', metadata=None)
    with tifffile.TiffWriter(path, bigtiff=spec.side > 20000) as tif:
        for level, side in enumerate(sides):
            data = _tiles(spec, glyphs, boxes, 2 ** level, side)
            extra = {} if level == 0 else dict(subfiletype=1)  # reduced resolution
            tif.write(data, shape=(side, side, 3), **opts, **extra)
    return dict(boxes=boxes, labels=list(spec.labels), levels=sides)


def digit_slide_array(spec: DigitSlideSpec, level: int = 0,
                      side: Optional[int] = None) -> np.ndarray:
    """One level of the slide as an array (for tests and small sizes)."""
    glyphs, boxes = choose_glyphs(spec)
    side = side or level_sides(spec)[level]
    t = spec.tile
    n = -(-side // t)
    tiles = [np.frombuffer(zlib.decompress(b), np.uint8).reshape(t, t, 3)
             for b in _tiles(spec, glyphs, boxes, 2 ** level, side)]
    rows = [np.concatenate(tiles[r * n:(r + 1) * n], axis=1) for r in range(n)]
    return np.concatenate(rows, axis=0)[:side, :side]
