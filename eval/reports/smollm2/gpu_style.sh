#!/usr/bin/env bash
# The code-style gate (`calora gate style`, eval/style_cases/) on base SmolLM2-135M-Instruct, as run on the
# lent GPU machine; same preconditions as gpu_eval.sh, plus build/gpu-ruff/ruff-*.whl (the linter).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site build/gpu-whl/*.whl build/gpu-ruff/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
mkdir -p /root/m/smol
[ -f /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf ] || cat /root/m/part-aa .gpu/b/part-ab > /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf
python3 -m ruff --version
python3 -m app.cli gate style --base-model /root/m/smol --device cuda --dtype float32 --max-new-tokens 384 \
  --out "$OUT/style.smollm2-base.json" 2>&1 | grep -v Warning | tail -12 || true
