#!/bin/bash
# The next GPU round of issue #14 (prepared 2026-12-07, third stop; configurations updated for round 5 in
# session 4, see "Round 5" below). Resumable: each stage leaves
# $W/<stage>.done and is skipped when run again.
#
# What the third stop's round taught (report.md, "Third stop"): the GPU machines' transformers (5.17)
# rebuilds Gemma 3's tokenizer from the GGUF so that prompts take ~3.5x the tokens; that round trained and
# graded on those ids and every adapter collapsed to one answer. `calora models fetch` now refuses such a
# tokenizer, so this round brings a verified one:
#
#   here:   tar -cJf .gpu/tok.tar.xz -C ~/.cache/calora/models/gemma3-270m tokenizer.json tokenizer_config.json
#           split -b 37748736 -d -a 1 <gemma-3-270m-q4_k_m.gguf> .gpu/p/q   (seven pieces of 36 MiB: a call
#           carries the tracked tree too, ~18 MiB since round 5's results, and at most 64 MiB in all)
#   device: seven consecutive calls (the machine idles out 30 s after a call), each carrying one piece into
#           /root/m/; the seventh also carries .gpu/tok.tar.xz and .gpu/evidence (`calora eval review
#           --backend none --save-evidence .gpu/evidence`, made here: the analyzers are not installed there)
#           into /root/x/, joins the pieces and checks the sha256 (a5fd3b62...); an eighth carries .whl
#           (pydantic, gguf, xgrammar, tree-sitter...), installs it into /root/site, copies the tree to
#           /root/snap (with /root/x/* in its .gpu/) and starts, from there:
#
#   setsid nohup bash eval/reports/gemma3-270m/next-round.sh > /root/round.log 2>&1 &
#
# Timings on one H100 (third stop): with the 3.5x tokens one config trained in 1,126 s (12.7k tokens/s,
# ~1 example per 4,096-token step); with the right tokenizer expect ~5 min a config. Graded runs take 1-2 min
# each with --batch-size 16. Bring back at most 8 files, 16 MiB each: round_candidates.py pack writes the
# picked adapters in bf16 as tar parts of 15 MB and the results as one tar.gz under $W/pack/.
set -u
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS=3 MKL_NUM_THREADS=3
W=/root/work; mkdir -p $W /root/tok
C="python3 -m app.cli"
P="python3 eval/reports/gemma3-270m/round_candidates.py"
run() {
  local name=$1; shift
  if [ -f $W/$name.done ]; then echo "skip $name"; return 0; fi
  echo "== $name start $(date +%T)"
  local start=$(date +%s)
  "$@" > $W/$name.log 2>&1; local rc=$?
  echo "== $name rc=$rc $(( $(date +%s) - start ))s"
  tail -3 $W/$name.log
  [ $rc = 0 ] && touch $W/$name.done
  return $rc
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
tar -xJf .gpu/tok.tar.xz -C /root/tok || exit 1
run model $C models fetch gemma3-270m --from /root/m/gemma-3-270m-q4_k_m.gguf --tokenizer /root/tok || exit 1
run data $C data build --examples datasets datasets-derived --out $W/data --tokenizer gemma3-270m || exit 1
grep -A9 "^reviewer" $W/data.log  # tokens median must be ~800, not ~2,800
# Round 5 (prepared in session 4, after round 4 in round4/): the verdict weighted 20x in the loss in both
# configurations (round 4's adapters did not learn it even on their training cases), and beside the eight
# per-reviewer adapters (A) one adapter trained on all eight reviewers' training examples (P, "pooled"; the
# system prompt names the reviewer), served as every reviewer's adapter.
base="--lora-r 8 --lora-alpha 16 --tokens-per-batch 4096 --checkpoint-every 6 --keep-checkpoints 100 --device cuda --decision-weight 20"
E="eval review --cases eval/scenarios --evidence-dir .gpu/evidence"
H="eval run --cases $W/data --backend engine --batch-size 16 --no-history"
mkdir -p $W/pool/pooled && cat $W/data/*/train.jsonl > $W/pool/pooled/train.jsonl
run trainA $C train --all --data $W/data --out $W/runs/A --epochs 4 --lr 5e-4 $base & pa=$!
run trainP $C train --reviewer pooled --data $W/pool --out $W/runs/P/pooled --epochs 3 --lr 5e-4 $base & pb=$!
run e2e_ev $C $E --backend none --label evidence --out $W/e2e_ev &
run heldBase $C $H --decoding both --label base --out $W/held_base &
run e2e_base $C $E --backend engine --ask-base-model --label evidence+base --out $W/e2e_base &
wait $pa $pb
$P links $W > $W/links.log 2>&1
for c in A2 A3 A4 P1 P2 P3; do run held_$c $C $H --adapters $W/ad/$c --decoding constrained --label $c --out $W/held_$c & done
wait
$P pick $W; head -5 $W/selection.json
run e2e_S $C $E --backend engine --adapters $W/ad/S --label evidence+adapters --out $W/e2e_S &
run heldS_raw $C $H --adapters $W/ad/S --decoding raw --label S --out $W/heldS_raw &
wait
$P pack $W; ls -la $W/pack
echo "== all done $(date +%T)"
