"""Fetch published gattn-mm models into a folder, as ``mim download`` does (the
checkpoint and the model's config dumped as NAME.py), offline-first: a checkpoint
that travels with the package (gattn_mm/.mim/checkpoints) is copied after its
sha256 prefix is checked; any other is downloaded from its release URL,
hash-checked, never unpickled here. (``mim download`` itself needs the network:
offline, mim 0.3.9 fails with a TypeError of its own.)

    python tools/download.py gattn_r18_digitbags --dest checkpoints_dl
"""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import os
import os.path as osp
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+',
                   help='published model names, e.g. gattn_r18_digitbags (an unknown '
                        'name prints the published ones)')
    p.add_argument('--dest', required=True, help='destination folder (created)')
    return p.parse_args(argv)


class WriteError(Exception):
    """A file of ``dest`` could not be written (the message names it)."""


def write(data: bytes, path: str) -> None:
    """``data`` to ``path`` atomically: a failure leaves no partial file and an older
    file of that name whole."""
    from gattn_mm.runtime import AtomicLocalBackend
    try:
        AtomicLocalBackend().put(data, path)
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}') from None


def fetch(name: str, dest: str) -> str:
    """Copy or download model ``name``'s checkpoint into ``dest`` and dump its
    config there, each written atomically; return the checkpoint's path."""
    from mmengine.config import Config
    from mmpretrain.apis import ModelHub

    from gattn_mm.apis import release_url
    from gattn_mm.runtime import download_checked
    model = ModelHub.get(name)
    source = download_checked(release_url(name))  # bundled, cached or downloaded; checked
    target = osp.join(dest, osp.basename(source))
    if osp.realpath(source) != osp.realpath(target):
        with open(source, 'rb') as f:  # a few MB
            write(f.read(), target)
    config = model.config if isinstance(model.config, Config) else Config.fromfile(
        model.config)
    write(config.pretty_text.encode('utf-8'), osp.join(dest, f'{name}.py'))
    return target


def main(argv=None) -> int:
    args = parse_args(argv)
    import gattn_mm  # noqa: F401  (registers the model index)
    from mmpretrain.apis import list_models
    known = list_models('gattn*')
    unknown = [m for m in args.models if m not in known]
    if unknown:
        print(f'error: unknown model(s) {", ".join(unknown)}; published: '
              f'{", ".join(known)}', file=sys.stderr)
        return 2
    try:
        os.makedirs(args.dest, exist_ok=True)
    except OSError as err:
        print(f'error: --dest {args.dest}: cannot be created as a folder '
              f'({err.strerror or err})', file=sys.stderr)
        return 2
    for name in args.models:
        try:
            path = fetch(name, args.dest)
        except WriteError as err:  # before OSError: not a download problem
            print(f'error: {name}: {err}', file=sys.stderr)
            return 1
        except OSError as err:  # URLError, connection and file errors
            print(f'error: {name}: its weights are not bundled with this install and '
                  f'the release URL cannot be read ({err})', file=sys.stderr)
            return 1
        print(f'{name}: {path} and {osp.join(args.dest, name + ".py")}')
    return 0


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
