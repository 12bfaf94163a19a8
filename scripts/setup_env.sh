#!/usr/bin/env bash
# Make a Python environment able to run Afterburn, and print its interpreter.
#
# Uses the active virtualenv / conda env if there is one (so a user's own CUDA or
# MPS torch is kept), else creates ./.venv. Installs torch only when the
# environment has none, pinned to 2.13.0: an unpinned `torch` pulls GBs of CUDA
# wheels on Linux. Then installs the project (editable) with the extras asked for.
# Usage: scripts/setup_env.sh [extras]   e.g. scripts/setup_env.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ -n "${VIRTUAL_ENV:-}" ]; then
    python="$VIRTUAL_ENV/bin/python"
elif [ -n "${CONDA_PREFIX:-}" ]; then
    python="$CONDA_PREFIX/bin/python"
else
    if [ ! -x .venv/bin/python ]; then
        "${PYTHON:-python3}" -m venv .venv >&2
    fi
    python="$PWD/.venv/bin/python"
fi
stamp_dir="$(dirname "$python")/../.afterburn-installed"
wanted="$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras:-none}"
if [ -f "$stamp_dir" ] && grep -qx "$wanted" "$stamp_dir"; then
    echo "$python"
    exit 0
fi
if "$python" -c "import torch" >/dev/null 2>&1; then
    "$python" -c "import torch; print(f'keeping torch {torch.__version__}', 'cuda' if torch.cuda.is_available() else 'cpu')" >&2
else
    "$python" -m pip install --quiet "torch==2.13.0" >&2
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
"$python" -m pip install --quiet -e "$spec" >&2
echo "$wanted" >> "$stamp_dir"
echo "$python"
