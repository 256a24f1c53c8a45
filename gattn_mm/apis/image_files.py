import os
import os.path as osp
from typing import List, Sequence

from gattn_mm.datasets.slides.base import READABLE_EXTENSIONS


def expand_image_paths(paths: Sequence[str]) -> List[str]:
    """Files as given, folders expanded (sorted, recursively) to the files of every
    extension a reader of gattn-mm takes (``READABLE_EXTENSIONS``: TIFF, PNG, JPEG,
    BMP, GIF, WebP, MPO and the OpenSlide formats .svs, .ndpi, .mrxs, ...; any case).
    Hidden files and folders (names starting with ``.``: macOS ``._x.png``) are left
    out. A file given by name is kept whatever its extension (the reader tells its
    format by content, or names it).

    Raises:
        FileNotFoundError: naming a path that does not exist, or a folder holding no
            file of those extensions (with a few of the files it does hold).
    """
    out = []
    for path in paths:
        if osp.isdir(path):
            found, others = [], []
            for d, dirs, files in os.walk(path):
                dirs[:] = [n for n in dirs if not n.startswith('.')]  # not walked into
                for f in files:
                    if not f.startswith('.'):
                        readable = f.lower().endswith(READABLE_EXTENSIONS)
                        (found if readable else others).append((d, f))
            found = [osp.join(d, f) for d, f in sorted(found)]
            others = [osp.join(d, f) for d, f in sorted(others)]
            if not found:
                held = (f'it holds {len(others)} other file(s), e.g. '
                        f'{", ".join(osp.relpath(o, path) for o in others[:3])}'
                        if others else 'it is empty')
                raise FileNotFoundError(
                    f'no images in the folder {path}: {held}; images are read from '
                    f'{", ".join(READABLE_EXTENSIONS)} files')
            out += found
        elif osp.exists(path):
            out.append(path)
        else:
            raise FileNotFoundError(f'no such image or folder: {path}')
    return out
