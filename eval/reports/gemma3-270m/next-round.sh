#!/bin/bash
# The next GPU round of issue #14, prepared in the session of 2026-12-07 (second stop) and NOT run there:
# the device time went to another run and to machines that could not be started (see report.md).
#
# On the GPU machine, from a copy of the repository root, after staging the Gemma 3 270M GGUF
# (sha256 a5fd3b62…) as /root/m/gemma-3-270m-q4_k_m.gguf and the project's wheels into /root/site, and
# with the analyzers' reports of every scenario saved here first
# (`calora eval review --cases eval/scenarios --backend none --save-evidence .gpu/evidence`):
#
#   setsid nohup bash eval/reports/gemma3-270m/next-round.sh > /root/round.log 2>&1 &
#
# Resumable: each stage leaves $W/<stage>.done and is skipped when run again.
set -u
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
W=/root/work; mkdir -p $W
C="python3 -m app.cli"
run() {
  local name=$1; shift
  if [ -f $W/$name.done ]; then echo "skip $name"; return 0; fi
  echo "== $name start $(date +%T)"
  local start=$(date +%s)
  "$@" > $W/$name.log 2>&1; local rc=$?
  echo "== $name rc=$rc $(( $(date +%s) - start ))s"
  tail -4 $W/$name.log
  [ $rc = 0 ] && touch $W/$name.done
  return $rc
}
links() {  # <run dir> <adapters dir>: the train --all layout as <reviewer>/ folders
  mkdir -p $2; for a in $1/*/adapter; do ln -sfn $a $2/$(basename $(dirname $a)); done
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
run model $C models fetch gemma3-270m --from /root/m/gemma-3-270m-q4_k_m.gguf || exit 1
run data $C data build --examples datasets datasets-derived --out $W/data --tokenizer gemma3-270m || exit 1
flags="--epochs 3 --lr 2e-4 --lora-r 8 --lora-alpha 16 --tokens-per-batch 4096"
run trainA $C train --all --data $W/data --out $W/runs/A $flags --device cuda || exit 1
links $W/runs/A $W/ad/A
E="eval review --cases eval/scenarios --evidence-dir .gpu/evidence"
run e2e_ev $C $E --backend none --label evidence --out $W/e2e_ev
run e2e_A $C $E --backend engine --adapters $W/ad/A --label evidence+adapters --out $W/e2e_A
run e2e_base $C $E --backend engine --label evidence+base --out $W/e2e_base
run heldA $C eval run --cases $W/data --adapters $W/ad/A --backend engine --decoding both --no-history \
    --label adapters --out $W/heldA
run heldBase $C eval run --cases $W/data --backend engine --decoding both --no-history --label base --out $W/heldBase
echo "== all done $(date +%T)"
