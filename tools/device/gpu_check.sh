#!/usr/bin/env bash
# The prepared GPU check: run it first in any session lent a GPU (tools/device/README.md).
#   tools/device/gpu_check.sh [--dry-run] [OUT_DIR [gpu_check.py options, e.g. --budget 420]]
#   (OUT_DIR: $OUT, else work_dirs/gpu_check)
# Installs the wheels carried in .whl/ (tools/device/prepare_wheels.sh) when present,
# then runs tools/device/gpu_check.py; everything it writes goes under OUT_DIR.
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=()
if [ "${1:-}" = "--dry-run" ]; then DRY=(--dry-run); shift; fi
OUT_DIR=${1:-${OUT:-work_dirs/gpu_check}}
[ $# -gt 0 ] && shift
PYTHON=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ ${#DRY[@]} -eq 0 ]; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHON
exec $PYTHON tools/device/gpu_check.py --out-dir "$OUT_DIR" "${DRY[@]}" "$@"
