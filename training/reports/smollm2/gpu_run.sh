#!/usr/bin/env bash
# The real run of issue 5 on the lent GPU machine (see training/reports/smollm2/README.md).
# Expects: /root/m/part-aa (first half of the GGUF, sent by an earlier call), .gpu/b/part-ab,
# .gpu/whl/*.whl (pydantic, gguf), .gpu/data/<reviewer>/train.jsonl (from `calora data build`).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p /root/m/smol
cat /root/m/part-aa .gpu/b/part-ab > /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /root/m/smol/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
REVIEWERS=${REVIEWERS:-"python sql docker_ci typescript react vue testing orchestration"}
for r in $REVIEWERS; do
  python3 -m training.commands train --reviewer "$r" --data .gpu/data --out "/tmp/runs/$r" \
    --base-model /root/m/smol --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf \
    --epochs 5 --tokens-per-batch 4096 --lr 3e-4 --lora-r 16 --lora-alpha 32 --checkpoint-every 20 \
    2>&1 | grep -v Warning | tr '\r' '\n' | grep -E "it/s\]$|Error|error|resuming" | tail -2 || true
  tail -1 "/tmp/runs/$r/metrics.jsonl"
done
# Adapters back in fp16 (half the bytes; the file limit is 16 MiB): one tarball per reviewer.
python3 - <<'PY'
import os, pathlib, torch
from safetensors.torch import load_file, save_file
for d in sorted(pathlib.Path("/tmp/runs").glob("*/adapter")):
    w = load_file(d / "adapter_model.safetensors")
    save_file({k: v.half() for k, v in w.items()}, d / "adapter_model.safetensors", metadata={"format": "pt"})
PY
cd /tmp/runs
for r in ${RETURN:-python sql docker_ci typescript react vue}; do
  [ -d "$r/adapter" ] && tar czf "$OUT/$r.tgz" "$r/adapter" "$r/metrics.jsonl" "$r/loss.png" "$r/config.json"
done
ls -la "$OUT"
