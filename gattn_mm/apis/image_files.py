import os
import os.path as osp
from typing import List, Sequence

from gattn_mm.datasets.transforms.loading import IMG_EXTENSIONS


def expand_image_paths(paths: Sequence[str]) -> List[str]:
    """Files as given, folders expanded (sorted, recursively) to their images.

    Raises:
        FileNotFoundError: naming a path that does not exist.
    """
    out = []
    for path in paths:
        if osp.isdir(path):
            for d, _, files in sorted(os.walk(path)):
                out += [osp.join(d, f) for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)]
        elif osp.exists(path):
            out.append(path)
        else:
            raise FileNotFoundError(f'no such image or folder: {path}')
    return out
