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


def output_paths(paths: Sequence[str], out_dir: str, suffix: str) -> List[str]:
    """One output file per input image, under ``out_dir``, named after the input's path
    relative to the folder that holds all the inputs (``a/img.png`` and ``b/img.png``
    -> ``OUT/a/img<suffix>`` and ``OUT/b/img<suffix>``; a single image or images of
    one folder -> ``OUT/<stem><suffix>``), so that two inputs never share an output
    and the name says which input it is. Inputs of one folder that differ only in
    their extension keep it (``x.png``, ``x.tif`` -> ``x.png<suffix>``,
    ``x.tif<suffix>``); nothing is numbered.

    Args:
        paths (Sequence[str]): the input files (e.g. of :func:`expand_image_paths`).
        out_dir (str): the output folder.
        suffix (str): what ends every name, e.g. ``'.png'`` or ``'.geojson'``.

    Raises:
        ValueError: for a path given twice (its outputs would be one file).
    """
    absolute = [osp.abspath(p) for p in paths]
    seen = set()
    for path, full in zip(paths, absolute):
        if full in seen:
            raise ValueError(f'{path} is given twice: its outputs would be one file')
        seen.add(full)
    if not absolute:
        return []
    root = osp.commonpath([osp.dirname(p) for p in absolute])
    stems = [osp.splitext(osp.relpath(p, root))[0] for p in absolute]
    clashing = {s for s in stems if stems.count(s) > 1}
    return [osp.join(out_dir, (osp.relpath(p, root) if s in clashing else s) + suffix)
            for p, s in zip(absolute, stems)]
