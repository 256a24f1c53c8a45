"""Copy the benchmark tables the scripts wrote (benchmarks/results/*.md) into
README.md and model_zoo.md, between ``<!-- bench:NAME:start -->`` and
``<!-- bench:NAME:end -->`` markers, so no number in them is typed by hand."""
import argparse
import glob
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = ('README.md', 'model_zoo.md')


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--results-dir', default=osp.join(ROOT, 'benchmarks', 'results'))
    args = p.parse_args(argv)
    found = tables(args.results_dir)
    for doc in DOCS:
        path = osp.join(ROOT, doc)
        text = open(path).read()
        for name, table in found.items():
            text = update(text, name, table)
        with open(path, 'w') as f:
            f.write(text)
    print('tables:', ', '.join(found) or 'none')


if __name__ == '__main__':
    main()
