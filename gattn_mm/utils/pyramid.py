"""Choosing a level of an image pyramid (a slide's, or a decoded image's single level)."""
from typing import Sequence, Tuple


def level_within(shapes: Sequence[Tuple[int, int]], downsample: float) -> int:
    """The coarsest level whose downsample from level 0 is at most ``downsample``
    (level 0 when none is): read there, a region has at least the resolution asked
    for. ``shapes``: (h, w) of every level, level 0 first."""
    H, W = shapes[0]
    best = 0
    for level, (h, w) in enumerate(shapes):
        if max(H / h, W / w) <= downsample * (1 + 1e-6):
            best = level
    return best


def level_covering(shapes: Sequence[Tuple[int, int]], size: Tuple[int, int]) -> int:
    """The coarsest level of at least ``size`` (h, w) (level 0 when none is)."""
    best = 0
    for level, (h, w) in enumerate(shapes):
        if h >= size[0] and w >= size[1]:
            best = level
    return best
