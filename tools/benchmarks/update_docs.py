"""Copy the benchmark tables the scripts wrote (benchmarks/results/*.md) into the
docs (DOCS: README.md, model_zoo.md, docs/benchmarks.md), between
``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->`` markers, so no number in
them is typed by hand.
``--check`` changes nothing and exits 1 naming every table a doc does not hold as
its results file has it (a test runs it)."""
import argparse
import glob
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = ('README.md', 'model_zoo.md', osp.join('docs', 'benchmarks.md'))


def tables(results_dir):
    """{name: markdown} for every results file, e.g. accuracy, resolution_cpu."""
    out = {}
    for path in sorted(glob.glob(osp.join(results_dir, '*.md'))):
        name = osp.splitext(osp.basename(path))[0]
        if not name.endswith('_quick'):
            out[name] = open(path).read().strip()
    return out


def update(text, name, table):
    start, end = f'<!-- bench:{name}:start -->', f'<!-- bench:{name}:end -->'
    pattern = re.compile(rf'{re.escape(start)}.*?{re.escape(end)}', re.S)
    return pattern.sub(lambda m: f'{start}\n{table}\n{end}', text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--results-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    p.add_argument('--check', action='store_true',
                   help='write nothing; exit 1 if a doc differs from the results files')
    args = p.parse_args(argv)
    found = tables(args.results_dir)
    stale = []
    for doc in DOCS:
        path = osp.join(ROOT, doc)
        old = text = open(path).read()
        for name, table in found.items():
            new = update(text, name, table)
            if new != text:
                stale.append(f'{doc}: {name}')
            text = new
        if not args.check and text != old:
            with open(path, 'w') as f:
                f.write(text)
    if args.check:
        for line in stale:
            print(f'stale: {line} (run python tools/benchmarks/update_docs.py)')
        return 1 if stale else 0
    print('tables:', ', '.join(found) or 'none')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
