"""Tissue against glass on a brightfield slide's thumbnail: Otsu's threshold."""
import cv2
import numpy as np

# Glass is bright: a pixel is glass when Otsu's threshold puts it on the bright side
# and it is at least this gray level (of 255). On a field that is all tissue, Otsu
# still splits it in two; the floor keeps both halves tissue.
GLASS_LEVEL = 200


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """Tissue pixels of a brightfield image (H&E, IHC): not glass, where glass is the
    bright class of Otsu's threshold (``cv2.THRESH_OTSU``) on the gray levels, and at
    least ``GLASS_LEVEL`` bright.

    Args:
        rgb (np.ndarray): (h, w, 3) uint8 RGB, e.g. a slide's thumbnail.

    Returns:
        np.ndarray: (h, w) bool, True on tissue.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or not rgb.size:
        raise ValueError(f'tissue_mask takes an (h, w, 3) uint8 RGB image, got '
                         f'{rgb.dtype} {rgb.shape}')
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return ~((gray > threshold) & (gray >= GLASS_LEVEL))
