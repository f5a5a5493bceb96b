# Reproduce eval/reports/smollm2/ (run from the repository root; ../shared/models/ holds SmolLM2).
# The numbers were measured on one H200 with eval/reports/smollm2/gpu_eval.sh, which runs these same
# commands with --device cuda and the GGUF copied to /root/m/smol; all decoding is greedy in float32, and
# on the 2-core CPU VM the adapter command limited to one batch (--reviewers docker_ci --limit 4) gave
# byte-identical answers (a full CPU run takes hours there).
# Adapters: runs/smollm2/<reviewer>/adapter/ from training/reports/smollm2/gpu_run.sh (final step, 5 epochs).
M=../shared/models/smollm2-135m-instruct
COMMON="--cases build/data --reviewers python sql docker_ci --base-model $M --max-new-tokens 384 --batch-size 4 --dtype float32"
calora data build --examples datasets --out build/data          # eval split = the trainer's (same hashes)
calora eval run $COMMON --backend transformers --decoding raw --label base    --out build/eval/smollm2/transformers
calora eval run $COMMON --backend transformers --decoding raw --label adapter --out build/eval/smollm2/transformers --adapters runs/smollm2
calora eval run $COMMON --backend engine --decoding both --label base    --out build/eval/smollm2/engine
calora eval run $COMMON --backend engine --decoding both --label adapter --out build/eval/smollm2/engine --adapters runs/smollm2
calora eval report --out eval/reports/smollm2 --title "SmolLM2-135M-Instruct: base vs trained adapter (python, sql, docker_ci)" \
  --commands eval/reports/smollm2/commands.sh --notes eval/reports/smollm2/notes.md --results \
  build/eval/smollm2/transformers/base.raw.json build/eval/smollm2/transformers/adapter.raw.json \
  build/eval/smollm2/engine/base.constrained.json build/eval/smollm2/engine/adapter.constrained.json
# What promotion would decide for these models (exit 1: every reviewer refused):
calora eval check --results build/eval/smollm2/transformers/adapter.raw.json build/eval/smollm2/engine/adapter.constrained.json
# The code-style gate on the base model (gpu_style.sh; writes style.smollm2-base.json):
calora gate style --base-model $M --dtype float32 --max-new-tokens 384 --out eval/reports/smollm2/style.smollm2-base.json
