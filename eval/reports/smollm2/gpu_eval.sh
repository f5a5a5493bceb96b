#!/usr/bin/env bash
# The headline eval as run on the lent GPU machine (eval/reports/smollm2/report.md says how to run the
# same commands anywhere). Expects, sent by earlier calls of the same warm machine:
#   /root/m/part-aa and .gpu/b/part-ab   the two halves of SmolLM2-135M-Instruct.Q4_1.gguf (../shared/models/)
#   build/gpu-whl/*.whl                  pydantic, gguf, peft (the machine has torch + transformers only)
#   build/data/<reviewer>/eval.jsonl     from `calora data build --examples datasets --out build/data`
#   runs/smollm2/<reviewer>/adapter/     the trained adapters (training/reports/smollm2/)
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site build/gpu-whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p /root/m/smol
[ -f /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf ] || cat /root/m/part-aa .gpu/b/part-ab > /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# BACKENDS: transformers (raw decoding) and/or engine (raw and schema-constrained decoding).
for backend in ${BACKENDS:-transformers engine}; do
  decoding=raw
  [ "$backend" = engine ] && decoding=both
  for label in base adapter; do
    extra=""
    [ "$label" = adapter ] && extra="--adapters runs/smollm2"
    python3 -m app.cli eval run --cases build/data --reviewers python sql docker_ci --base-model /root/m/smol \
      --max-new-tokens 384 --batch-size 4 --dtype float32 --device cuda --backend "$backend" --decoding "$decoding" \
      --label "$label" $extra --out "$OUT/$backend" --history "$OUT/history.sqlite" 2>&1 \
      | grep -v Warning | tr '\r' '\n' | grep -vE "it/s\]$|^$" | tail -25
  done
done
ls -laR "$OUT"
