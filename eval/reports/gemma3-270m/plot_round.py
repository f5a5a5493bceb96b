"""Charts of the fourth GPU round (issue #14), from the files beside this script.

  python <this file>   -> training-loss.png, end-to-end.png beside it

training-loss.png: the answer loss per optimizer step of each reviewer in runs A, B and C (a moving mean of
10 steps, x in epochs so the runs line up). end-to-end.png: the four end-to-end rows of the same 80
scenarios side by side (pass, must-finds hit, noisy findings, block scenarios approved).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
RUNS = {"A": "lr 2e-4, 3 epochs", "B": "lr 5e-4, 4 epochs", "C": "lr 1e-3, 5 epochs"}
ROWS = {"e2e_ev": "evidence alone", "e2e_base": "evidence + base model",
        "e2e_S": "evidence + adapters S", "e2e_C": "evidence + adapters C"}


def moving_mean(values: list[float], width: int = 10) -> list[float]:
    out, total = [], 0.0
    for k, value in enumerate(values):
        total += value
        if k >= width:
            total -= values[k - width]
        out.append(total / min(k + 1, width))
    return out


def plot_losses() -> None:
    reviewers = sorted(p.name for p in (HERE / "runs" / "A").iterdir() if p.is_dir())
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharey=True)
    for ax, reviewer in zip(axes.flat, reviewers):
        for run, label in RUNS.items():
            path = HERE / "runs" / run / reviewer / "metrics.jsonl"
            if not path.exists():
                continue
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            epochs = int(json.loads((path.parent / "config.json").read_text())["epochs"])
            steps = len(rows)
            ax.plot([epochs * r["step"] / steps for r in rows], moving_mean([r["loss"] for r in rows]),
                    label=f"{run}: {label}")
        ax.set_title(reviewer)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("answer loss (mean of 10 steps)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Gemma 3 270M LoRA r 8, right tokenizer, one H100 (round 4)")
    fig.tight_layout()
    fig.savefig(HERE / "training-loss.png", dpi=90)


def plot_end_to_end() -> None:
    labels, figures = [], []
    for folder, label in ROWS.items():
        overall = json.loads((HERE / folder / "review_results.json").read_text())["overall"]
        labels.append(label)
        figures.append((overall["passed"], overall["must_finds_hit"], overall["noise_findings"],
                        sum(1 for s in json.loads((HERE / folder / "review_results.json").read_text())["scenarios"]
                            if s["block_approved"])))
    names = ("passed /80", "must-finds hit /69", "noisy findings", "block scenarios approved /30")
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.2
    for k, label in enumerate(labels):
        xs = [i + (k - 1.5) * width for i in range(len(names))]
        bars = ax.bar(xs, figures[k], width, label=label)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.legend(fontsize=8)
    ax.set_title("80 scenarios end to end, the same saved analyzer reports in every row (H100)")
    fig.tight_layout()
    fig.savefig(HERE / "end-to-end.png", dpi=90)


if __name__ == "__main__":
    plot_losses()
    plot_end_to_end()
    print(f"wrote {HERE / 'training-loss.png'} and {HERE / 'end-to-end.png'}")
