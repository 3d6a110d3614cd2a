#!/usr/bin/env bash
# The GPU benchmark, one prepared command for a lent GPU (under 8 minutes, no network):
#   bash benchmarks/gpu.sh            # on a CUDA machine
#   bash benchmarks/gpu.sh --dry-run  # every path on the CPU, tiny, in well under a minute
# Options: --colour PATH (a colour image folder; default: one it draws), --budget-s S
# (default 440), --out DIR (where the training runs go). What it runs and prints:
# benchmarks/gpu.py's docstring. Python: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$python" "$root/benchmarks/gpu.py" "$@"
