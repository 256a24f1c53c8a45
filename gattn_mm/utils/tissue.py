"""Tissue against its background on a slide's thumbnail: Otsu's threshold; the
background is bright glass (brightfield: H&E, IHC) or dark (fluorescence)."""
import cv2
import numpy as np

# Glass is bright: a pixel is glass when Otsu's threshold puts it on the bright side
# and it is at least this gray level (of 255). On a field that is all tissue, Otsu
# still splits it in two; the floor keeps both halves tissue.
GLASS_LEVEL = 200
# Fluorescence: the background is dark; a pixel is background when Otsu puts it on
# the dark side and it is at most this gray level (a dim field of only tissue stays)
DARK_LEVEL = 40
BACKGROUNDS = ('bright', 'dark')


def tissue_mask(rgb: np.ndarray, background: str = 'bright') -> np.ndarray:
    """Tissue pixels of a slide: not background, where the background is the class
    of Otsu's threshold (``cv2.THRESH_OTSU``) on the gray levels on its side, and
    beyond a floor: at least ``GLASS_LEVEL`` bright (``background='bright'``:
    brightfield, H&E, IHC) or at most ``DARK_LEVEL`` (``'dark'``: fluorescence).

    Args:
        rgb (np.ndarray): (h, w, 3) uint8 RGB, e.g. a slide's thumbnail.
        background (str): ``'bright'`` or ``'dark'``.

    Returns:
        np.ndarray: (h, w) bool, True on tissue.
    """
    if background not in BACKGROUNDS:
        raise ValueError(f'tissue_mask: background must be one of {BACKGROUNDS}, got '
                         f'{background!r}')
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or not rgb.size:
        raise ValueError(f'tissue_mask takes an (h, w, 3) uint8 RGB image, got '
                         f'{rgb.dtype} {rgb.shape}')
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if background == 'dark':
        return ~((gray <= threshold) & (gray <= DARK_LEVEL))
    return ~((gray > threshold) & (gray >= GLASS_LEVEL))
