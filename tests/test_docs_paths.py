"""Nothing the docs promise is missing: every repository path that README.md,
model_zoo.md, configs/gattn/README.md and docs/*.md name (in backticks, in code
blocks, or as a relative link or image) exists. Data and work folders (``data/``,
``work_dirs/``), URLs, environment variables and placeholders (``CKPT``, ``NAME``,
``<weights>``) are not paths of the repository and are skipped. A path given as a
prefix (``tools/publish_model.py ... checkpoints/gattn_r18_megapixel``), a glob
(``robustness_*_train.log``) or with braces (``{digitbags,megapixel}``) must match at
least one file.

The lab notebook's copies of retired benchmark tables
(``benchmarks/experiments/*.md``, between ``<!-- bench:NAME:start/end -->``) must
equal the markdown beside their JSON in ``benchmarks/experiments/results/``, as
tools/benchmarks/update_docs.py checks the product docs against benchmarks/results/."""
import glob
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = sorted(['README.md', 'model_zoo.md', osp.join('configs', 'gattn', 'README.md')] +
              [osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md'))])
# top-level entries of the repository a docs path starts with
TOP_DIRS = ('benchmarks/', 'checkpoints/', 'configs/', 'docs/', 'examples/', 'gattn_mm/',
            'tests/', 'tools/')
TOP_FILES = ('README.md', 'model_zoo.md', 'Makefile', 'MANIFEST.in', 'pyproject.toml',
             'model-index.yml')
INLINE = re.compile(r'`([^`\n]+)`')
FENCE = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')


def expand_braces(path):
    m = re.search(r'\{([^{}]*)\}', path)
    if not m:
        return [path]
    return [p for alt in m.group(1).split(',')
            for p in expand_braces(path[:m.start()] + alt + path[m.end():])]


def is_placeholder(path):
    """``NAME.md``, ``<weights>``, ``CKPT``: a component written in capitals or angles."""
    for part in path.strip('/').split('/'):
        stem = part.split('.')[0]
        if '<' in part or '$' in part or (stem.isupper() and len(stem) > 1):
            return True
    return False


def repo_path(token):
    """The repository path a token of a doc names, or None."""
    token = token.strip().strip('"\'').rstrip('.,;:)')
    token = token.split('#')[0]
    if not token or '://' in token:
        return None
    if token.startswith('./'):
        token = token[2:]
    if token in TOP_FILES or token.startswith(TOP_DIRS):
        return None if is_placeholder(token) else token
    return None


def exists(path):
    for p in expand_braces(path):
        full = osp.join(ROOT, p)
        if osp.exists(full):
            continue
        if any(c in p for c in '*?['):
            if glob.glob(full):
                continue
        elif glob.glob(glob.escape(full) + '*'):  # a prefix: publish_model's OUT
            continue
        return False
    return True


def named_paths(doc):
    """(path, where) for every repository path doc names."""
    text = open(osp.join(ROOT, doc), encoding='utf-8').read()
    found = []
    for block in FENCE.findall(text):
        found += [(p, 'code block') for p in map(repo_path, block.split()) if p]
    prose = FENCE.sub('', text)
    for code in INLINE.findall(prose):
        found += [(p, f'`{code}`') for p in map(repo_path, code.split()) if p]
    for target in LINK.findall(prose):
        target = target.split('#')[0]
        if not target or '://' in target or target.startswith('mailto:'):
            continue
        rel = osp.normpath(osp.join(osp.dirname(doc), target))
        found.append((rel, f'link ({target})'))
    return found


def test_the_docs_exist():
    for doc in ('README.md', 'model_zoo.md', 'configs/gattn/README.md', 'docs/install.md',
                'docs/train_your_data.md', 'docs/inference.md', 'docs/slides.md',
                'docs/safety.md', 'docs/extending.md', 'docs/benchmarks.md',
                'docs/tools.md', 'docs/recipe.md'):
        assert doc in DOCS or osp.isfile(osp.join(ROOT, doc)), doc
    # the README stays a first screen, not the manual
    assert len(open(osp.join(ROOT, 'README.md')).read().splitlines()) <= 160


@pytest.mark.parametrize('doc', DOCS)
def test_every_path_a_doc_names_exists(doc):
    named = named_paths(doc)
    assert named, f'{doc} names no repository path (is the extraction broken?)'
    missing = sorted({f'{path} ({where})' for path, where in named if not exists(path)})
    assert not missing, f'{doc} names paths that are not in the repository:\n' + \
        '\n'.join(missing)


def test_the_checker_sees_a_missing_path(tmp_path):
    """The extraction finds backticked paths, code-block paths and links, and skips
    data, work dirs, URLs and placeholders."""
    assert repo_path('configs/gattn_digitbags.py,') == 'configs/gattn_digitbags.py'
    assert repo_path('data/fungi') is None and repo_path('work_dirs/demo') is None
    assert repo_path('https://github.com/x/configs/a.py') is None
    assert repo_path('benchmarks/results/NAME.md') is None
    assert repo_path('$TORCH_HOME/hub/checkpoints') is None
    assert exists('benchmarks/results/logs/robustness_*_noisy_or_train.log')
    assert exists('checkpoints/gattn_r18_megapixel')  # a prefix
    assert not exists('configs/gattn_no_such_config.py')
    assert not exists('tools/benchmarks/probes/decision_rules.py')  # moved to the notebook


def test_the_notebooks_tables_are_their_results():
    checked = 0
    for doc in glob.glob(osp.join(ROOT, 'benchmarks', 'experiments', '*.md')):
        text = open(doc, encoding='utf-8').read()
        for name, table in re.findall(
                r'<!-- bench:(\w+):start -->\n(.*?)\n<!-- bench:\1:end -->', text, re.S):
            md = osp.join(ROOT, 'benchmarks', 'experiments', 'results', f'{name}.md')
            assert osp.isfile(md), f'{osp.relpath(doc, ROOT)}: no results file for {name}'
            assert table.strip() == open(md).read().strip(), \
                f'{osp.relpath(doc, ROOT)}: table {name} differs from {osp.relpath(md, ROOT)}'
            checked += 1
    assert checked >= 4
