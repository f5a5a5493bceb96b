"""The GPU round's helper (next-round.sh): candidate adapters from epoch checkpoints, the per-reviewer pick.

  round_candidates.py links W  -> W/ad/<cand>/<reviewer> links (A2 A3 A4 from run A, 4 epochs; P1 P2 P3 from
                                  the pooled run P, 3 epochs, the same adapter for every reviewer)
  round_candidates.py pick W   -> W/ad/S/<reviewer>: the candidate with the best constrained held-out score
  round_candidates.py pack W   -> W/pack/: S in bf16 as tar parts of <= 15 MB, results as one tar.gz

The pick reads the held-out split, so the held-out figures of S are optimistic by one choice among six;
the end-to-end scenarios (eval/scenarios/) play no part in it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

CANDIDATES = {"A2": ("A", 4, 2), "A3": ("A", 4, 3), "A4": ("A", 4, 4),
              "P1": ("P", 3, 1), "P2": ("P", 3, 2), "P3": ("P", 3, 3)}
POOLED = "pooled"  # a run folder of this name serves every reviewer


def reviewers(work: Path) -> list[str]:
    return sorted(p.name for p in (work / "data").iterdir() if (p / "eval.jsonl").exists())


def epoch_adapter(run: Path, epochs: int, epoch: int) -> Path:
    if epoch == epochs:
        return run / "adapter"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    target = round(max(steps) * epoch / epochs)
    ckpts = sorted((run / "checkpoints").glob("step-*"), key=lambda p: abs(int(p.name[5:]) - target))
    return ckpts[0] / "adapter"


def links(work: Path) -> None:
    for cand, (config, epochs, epoch) in CANDIDATES.items():
        folder = work / "ad" / cand
        folder.mkdir(parents=True, exist_ok=True)
        for reviewer in reviewers(work):
            run = work / "runs" / config / reviewer
            if (work / "runs" / config / POOLED).exists():
                run = work / "runs" / config / POOLED
            if not (run / "adapter").exists():
                continue
            target = folder / reviewer
            if target.is_symlink():
                target.unlink()
            target.symlink_to(epoch_adapter(run, epochs, epoch))
            print(cand, reviewer, os.readlink(target))


def score(row: dict) -> float:
    value = {key: row.get(key) or 0.0 for key in
             ("pass_rate", "verdict_accuracy", "finding_recall", "block_recall", "false_block_rate", "noise_rate",
              "validity")}
    return (value["pass_rate"] + value["verdict_accuracy"] + value["finding_recall"] + value["block_recall"]
            - value["false_block_rate"] - 0.5 * value["noise_rate"] + value["validity"])


def pick(work: Path) -> None:
    table = {}
    for cand in CANDIDATES:
        path = work / f"held_{cand}" / f"{cand}.constrained.json"
        if path.exists():
            table[cand] = json.loads(path.read_text())["reviewers"]
    choice = {}
    folder = work / "ad" / "S"
    folder.mkdir(parents=True, exist_ok=True)
    for reviewer in reviewers(work):
        scored = [(score(rows[reviewer]), cand) for cand, rows in table.items() if reviewer in rows]
        if not scored:
            continue
        best = max(scored)[1]
        choice[reviewer] = {"candidate": best, "scores": {c: round(s, 3) for s, c in scored},
                            "adapter": os.readlink(work / "ad" / best / reviewer)}
        target = folder / reviewer
        if target.is_symlink():
            target.unlink()
        target.symlink_to(work / "ad" / best / reviewer)
        print(reviewer, best, choice[reviewer]["scores"])
    (work / "selection.json").write_text(json.dumps(choice, indent=2))


def pack(work: Path) -> None:
    sys.path.insert(0, os.getcwd())
    from eval.promote import write_bf16

    out = work / "pack"
    stage = work / "stage" / "S"
    stage.mkdir(parents=True, exist_ok=True)
    out.mkdir(exist_ok=True)
    for reviewer in reviewers(work):
        source = (work / "ad" / "S" / reviewer).resolve()
        if not source.exists():
            continue
        dest = stage / reviewer
        dest.mkdir(exist_ok=True)
        for name in ("adapter_config.json", "calora-manifest.json", "README.md"):
            if (source / name).exists():
                (dest / name).write_bytes((source / name).read_bytes())
        write_bf16(source / "adapter_model.safetensors", dest / "adapter_model.safetensors")
    subprocess.run(f"tar -C {work}/stage -cf - S | split -b 15000000 -d -a 1 - {out}/S.tar.", shell=True, check=True)
    keep = "selection.json *.log e2e_* held_* heldS* runs/*/summary.json runs/*/*/metrics.jsonl runs/*/*/config.json"
    subprocess.run(f"cd {work} && tar -czf {out}/results.tgz --ignore-failed-read $(ls -d {keep} 2>/dev/null)",
                   shell=True, check=False)


if __name__ == "__main__":
    {"links": links, "pick": pick, "pack": pack}[sys.argv[1]](Path(sys.argv[2]))
