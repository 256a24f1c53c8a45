"""Choosing a level of an image pyramid (a slide's, or a decoded image's single level)."""
from typing import Optional, Sequence, Tuple


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


def level_covering(shapes: Sequence[Tuple[int, int]], size: Tuple[int, int],
                   max_pixels: Optional[int] = None,
                   costs: Optional[Sequence[int]] = None) -> int:
    """The coarsest level of at least ``size`` (h, w) (level 0 when none is). With
    ``max_pixels``, only levels of at most that many pixels are chosen (to be read
    whole; ``costs``: the pixels decoded to read each level whole, when more than
    h x w, e.g. a level stored in tiles larger than itself): the coarsest of them
    covering ``size``, else the finest of them (the coarsest level when every level
    is larger)."""
    costs = [h * w for h, w in shapes] if costs is None else costs
    within = [level for level, cost in enumerate(costs)
              if max_pixels is None or cost <= max_pixels] or [len(shapes) - 1]
    covering = [level for level in within
                if shapes[level][0] >= size[0] and shapes[level][1] >= size[1]]
    return covering[-1] if covering else within[0]
