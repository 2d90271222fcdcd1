#!/usr/bin/env bash
# The GPU check of issue 14 in one command, on a bare GPU machine (the device tool's image: torch,
# accelerate, peft, safetensors, pyarrow... but no trl, datasets, gguf, jsonargparse; transformers 5.17).
#
#   here (with network):   bash scripts/gpu_check.sh --prepare     # wheels into .whl/, tokenizer + data into .gpucarry/
#   on the GPU machine:    bash scripts/gpu_check.sh               # carry: [".whl", ".gpucarry"]; ends within 7 min
#
# It installs the carried wheels into /tmp/site, runs benchmarks/gpu_throughput.py (1B Llama, bf16) and the
# CUDA-sensitive tests, then genpref with flex attention, and writes everything under $OUT (or ./gpu_check_out). The SmolLM2 GGUF package
# (~100 MB) is not carried: the converted tokenizer files are (the benchmark and tests need no SmolLM2 weights).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
  exclude="$(git rev-parse --git-path info/exclude)"
  mkdir -p "$(dirname "$exclude")" && touch "$exclude"
  for p in /.whl/ /.gpucarry/; do grep -qxF "$p" "$exclude" || echo "$p" >> "$exclude"; done
  rm -rf .whl .gpucarry && mkdir -p .whl .gpucarry/data .gpucarry/cache/models/smollm2-135m
  plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
  # pure-Python packages the image lacks (or has too old: transformers 5.17), pinned to what CI uses here
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d .whl \
    "transformers==$(python3 -c 'import transformers; print(transformers.__version__)')" \
    "trl==$(python3 -c 'import trl; print(trl.__version__)')" \
    "datasets==$(python3 -c 'import datasets; print(datasets.__version__)')" \
    dill multiprocess "jsonargparse==$(python3 -c 'import jsonargparse; print(jsonargparse.__version__)')" \
    docstring-parser typeshed-client "gguf==$(python3 -c 'import gguf, importlib.metadata as m; print(m.version("gguf"))')" \
    || exit 1
  src="${GENPREF_CACHE:-$HOME/.cache/genpref}/models/smollm2-135m"
  PYTHONPATH=src python3 -c "from genpref.models.backbone import resolve_backbone; resolve_backbone('smollm2-135m')"
  cp "$src"/{config.json,generation_config.json,tokenizer.json,tokenizer_config.json,chat_template.jinja} \
    .gpucarry/cache/models/smollm2-135m/ 2>/dev/null
  data="$(PYTHONPATH=src python3 -c 'from genpref.data.paths import shared_data_dir; print(shared_data_dir())')"
  cp "$data/ultrafeedback_binarized_train1000.jsonl.gz" .gpucarry/data/
  du -sh .whl .gpucarry
  exit 0
fi

out="${OUT:-gpu_check_out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:$PWD/benchmarks:/tmp/site" GENPREF_CACHE="$PWD/.gpucarry/cache" \
  GENPREF_SHARED_DATA="$PWD/.gpucarry/data" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 \
  CUDA_CACHE_PATH=/tmp/nv
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
# 1. the benchmark (about 4 minutes on an H200 at this size)
timeout 240 python3 benchmarks/gpu_throughput.py --device cuda --size 1b --n_pairs 256 --max_length 512 \
  --batch_size 8 --profile --work_dir /tmp/gpu_bench --output "$out/gpu_throughput.json" 2>&1 | tee "$out/bench.log"
# 2. the CUDA-sensitive tests (placement, precision, resume, judge, cache key, tokenizer)
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_logprobs_precision.py \
  tests/test_reference_cache_key.py tests/test_smollm_tokens.py \
  "tests/test_po_train.py::test_live_reference_matches_precomputed" \
  "tests/test_po_train.py::test_resume_equals_uninterrupted" \
  "tests/test_selfplay.py::test_judge_stage_saves_logits_whose_sigmoid_is_the_probability" \
  2>&1 | tee "$out/tests.log"
# 3. genpref alone with packed flex attention (padding-free, no extra package): its speed and CUDA backward
timeout 80 python3 benchmarks/gpu_throughput.py --device cuda --size 1b --n_pairs 128 --max_length 512 \
  --batch_size 8 --settings genpref --attention flex_attention --work_dir /tmp/gpu_bench \
  --output "$out/gpu_throughput_flex.json" 2>&1 | tee "$out/bench_flex.log"
