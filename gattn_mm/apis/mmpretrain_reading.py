"""mmpretrain's own ``ImageClassificationInferencer`` reads an image file with
``mmcv.imread`` before any transform of the config runs: no pixel budget checked
before decoding (a 30000^2 PNG decodes to 2.7 GB), a TIFF stack read as its first
page, a CMYK or palette TIFF read as RGB. mmpretrain 1.x gives no registry for that
step, and ``import gattn_mm`` replaces nothing (:mod:`gattn_mm.runtime`), so with a
gattn model, use :class:`~gattn_mm.apis.GattnInferencer` (the same API, gattn-mm's
reader), hand mmpretrain's inferencer arrays read with
:func:`~gattn_mm.datasets.transforms.read_image`, or run it inside
:func:`microscopy_reading`, which reads its files with gattn-mm's reader for the
duration."""
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np


@contextmanager
def microscopy_reading(max_pixels: Optional[int] = None) -> Iterator[None]:
    """For the duration, mmpretrain's ``ImageClassificationInferencer`` (and
    ``mmpretrain.apis.inference_model``) reads image files (``str`` or ``Path``) with
    :func:`~gattn_mm.datasets.transforms.read_image` (BGR, as ``mmcv.imread`` gives),
    within ``max_pixels`` (default: the reader's budget): bombs, stacks and colour
    models are refused or read as in gattn-mm's tools, raising ``ImageReadError``
    naming the file. Arrays are passed as before. Restored on exit; process-wide
    while active (not for threads that read images with mmpretrain meanwhile).

    Example:
        >>> from mmpretrain.apis import ImageClassificationInferencer
        >>> from gattn_mm.apis import microscopy_reading
        >>> with microscopy_reading():
        ...     ImageClassificationInferencer(config, pretrained=ckpt)('slide.tif')
    """
    import mmpretrain.apis.image_classification as image_classification

    from gattn_mm.datasets.transforms.image_reading import DEFAULT_MAX_PIXELS, read_image
    budget = int(max_pixels or DEFAULT_MAX_PIXELS)
    original = image_classification.imread

    def imread(img_or_path, *args, **kwargs):
        if isinstance(img_or_path, (str, Path)):
            return np.ascontiguousarray(read_image(str(img_or_path), budget)[..., ::-1])
        return original(img_or_path, *args, **kwargs)

    image_classification.imread = imread
    try:
        yield
    finally:
        image_classification.imread = original
