#!/usr/bin/env bash
# Download into .whl/ (ignored) exactly the wheels the GPU machine lacks to run
# gattn-mm: the OpenMMLab packages and their pure-Python needs, at the versions
# `make venv` installed in .venv (the device has PyTorch, torchvision, timm, numpy,
# OpenCV, matplotlib, rich, scikit-learn, tifffile, pytest; see the device tool's
# KINDS.md). The device runs Python 3.12 on x86-64 and reaches no package index.
#   tools/device/prepare_wheels.sh [DIR]     (default .whl; needs `make venv` first)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
DEST=${1:-.whl}
PACKAGES=(mmengine mmpretrain mmcv-lite modelindex model-index addict yapf platformdirs
          termcolor mat4py ordered-set importlib-metadata lazy-importer)
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p "$DEST"
for name in "${PACKAGES[@]}"; do
    version=$($PY -c "import importlib.metadata as m; print(m.version('$name'))")
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$DEST" "$name==$version"
done
size=$(du -sm "$DEST" | cut -f1)
echo "wheels in $DEST: $(ls "$DEST" | wc -l) files, ${size} MiB (the device carries 64 MiB)"
[ "$size" -lt 60 ] || { echo "error: $DEST is too large to carry" >&2; exit 1; }
