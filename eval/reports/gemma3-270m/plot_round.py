"""Charts of one GPU round of issue #14, from the files in the round's folder.

  python <this file> round4|round5|rules-and-blind   -> the charts in that folder

training-loss.png: the answer loss per optimizer step of each training run (a moving mean of 10 steps, x in
epochs so the runs line up), one panel per reviewer, and one for a pooled run (one adapter trained on every
reviewer's examples) where the round has one. end-to-end*.png: the round's end-to-end rows on the same 80
scenarios side by side (pass, decision right, must-finds hit, noisy findings, block scenarios approved).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
POOLED = "pooled"  # the run folder of an adapter trained on all eight reviewers' examples
ROUNDS = {
    "round4": {
        "title": "H100, round 4",
        "runs": {"A": "lr 2e-4, 3 epochs", "B": "lr 5e-4, 4 epochs", "C": "lr 1e-3, 5 epochs"},
        "rows": {"e2e_ev": "evidence alone", "e2e_base": "evidence + base model",
                 "e2e_S": "evidence + adapters S", "e2e_C": "evidence + adapters C"},
    },
    "round5": {
        "title": "H100, round 5, verdict weighted 20x",
        "runs": {"A": "per reviewer, lr 5e-4, 4 epochs", "P": "pooled, lr 5e-4, 3 epochs"},
        "rows": {"e2e_ev": "evidence alone", "e2e_base": "evidence + base model",
                 "e2e_S": "evidence + adapters S (pooled picks)"},
        "more": {  # the same adapters on the dev VM's CPU (fp32), after the round: how findings are posted
            "end-to-end-cpu.png": {
                "title": "round 5's adapters S on the 2-core CPU",
                "rows": {"e2e_cpu_ev": "evidence alone", "e2e_cpu_all": "+ adapters S, every finding posted",
                         "e2e_cpu_confirmed": "+ adapters S, only findings an analyzer confirms (the default)"},
            },
        },
    },
    "rules-and-blind": {  # session 6: calora's pattern rules, and the 40 blind scenarios (2-core CPU, round 5's S)
        "title": "2-core CPU, round 5's adapters S",
        "more": {
            "end-to-end-scenarios.png": {
                "chart_title": "the 80 scenarios of eval/scenarios (the rules were written after seeing them)",
                "rows": {"sc_ev_before": "evidence, before the pattern rules", "sc_ev": "evidence with the pattern rules",
                         "sc_base": "+ base model", "sc_S": "+ adapters S (confirmed only, the default)"},
            },
            "end-to-end-blind.png": {
                "chart_title": "the 40 blind scenarios of eval/scenarios-blind (nothing tuned on them first)",
                "rows": {"bl_ev_before": "evidence, before the pattern rules",
                         "bl_ev_first": "evidence with the pattern rules, first run",
                         "bl_ev": "evidence after 4 false-alarm fixes", "bl_base": "+ base model",
                         "bl_S": "+ adapters S (confirmed only)", "bl_Sall": "+ adapters S (every finding)"},
            },
            "end-to-end-blind2.png": {
                "chart_title": "the 40 scenarios of eval/scenarios-blind2 (written blind to every change of this stop)",
                "rows": {"b2_ev_before": "evidence, before this stop", "b2_ev": "evidence after this stop",
                         "b2_base": "+ base model", "b2_S": "+ adapters S (confirmed only)",
                         "b2_Sall": "+ adapters S (every finding)"},
            },
        },
    },
    "semgrep-and-blind3": {  # session 7: semgrep's taint rules, and a third blind set (2-core CPU, round 5's S)
        "title": "2-core CPU, round 5's adapters S",
        "more": {
            "end-to-end-blind3.png": {
                "chart_title": "the 40 scenarios of eval/scenarios-blind3 (the rules were written before the set existed)",
                "rows": {"b3_ev_before": "evidence, before semgrep", "b3_ev_first": "evidence with semgrep, first run",
                         "b3_ev": "evidence after 4 guards", "b3_base": "+ base model",
                         "b3_S": "+ adapters S (confirmed only)", "b3_Sall": "+ adapters S (every finding)",
                         "b3_ev_tuned": "evidence after 3 refinements read off it (tuned)",
                         "b3_S_tuned": "+ adapters S on that (tuned)"},
            },
        },
    },
    "session10": {  # session 10: 20 more pattern rules, and a fourth blind set with whole files (2-core CPU)
        "title": "2-core CPU, round 5's adapters S",
        "more": {
            "end-to-end-blind4.png": {
                "chart_title": "the 40 scenarios of eval/scenarios-blind4 (written blind while the rules were written)",
                "rows": {"before_scenarios-blind4": "evidence, before the 20 rules",
                         "rules_scenarios-blind4": "evidence with them", "b4_base": "+ base model",
                         "b4_S": "+ adapters S (confirmed only)", "b4_Sall": "+ adapters S (every finding)"},
            },
        },
    },
    "session11": {  # session 11: script fragments, 5 pattern rules, .js routed, and a fifth blind set (2-core CPU)
        "title": "2-core CPU, round 5's adapters S",
        "more": {
            "end-to-end-blind5.png": {
                "chart_title": "the 40 scenarios of eval/scenarios-blind5 (written blind while this stop's analyzers were)",
                "rows": {"before_scenarios-blind5": "evidence, before this stop",
                         "ev_scenarios-blind5": "evidence after it", "base_scenarios-blind5": "+ base model",
                         "S_scenarios-blind5": "+ adapters S (confirmed only)"},
            },
        },
    },
}


def moving_mean(values: list[float], width: int = 10) -> list[float]:
    out, total = [], 0.0
    for k, value in enumerate(values):
        total += value
        if k >= width:
            total -= values[k - width]
        out.append(total / min(k + 1, width))
    return out


def _plot_run(ax, path: Path, label: str) -> None:  # type: ignore[no-untyped-def]
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    epochs = int(json.loads((path.parent / "config.json").read_text())["epochs"])
    steps = len(rows)
    ax.plot([epochs * r["step"] / steps for r in rows], moving_mean([r["loss"] for r in rows]), label=label)


def plot_losses(folder: Path, settings: dict) -> None:
    runs: dict[str, str] = settings["runs"]
    panels = sorted({p.name for run in runs for p in (folder / "runs" / run).iterdir() if p.is_dir()})
    columns = 4 if len(panels) <= 8 else 3
    fig, axes = plt.subplots((len(panels) + columns - 1) // columns, columns, figsize=(16, 3.5 * len(panels) / columns + 1),
                             sharey=True, squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for run, label in runs.items():
            path = folder / "runs" / run / panel / "metrics.jsonl"
            if path.exists():
                _plot_run(ax, path, f"{run}: {label}")
        ax.set_title("pooled: all eight reviewers" if panel == POOLED else panel)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("answer loss (mean of 10 steps)")
    fig.suptitle(f"Gemma 3 270M LoRA r 8 ({settings['title']})")
    fig.tight_layout()
    fig.savefig(folder / "training-loss.png", dpi=90)


def plot_end_to_end(folder: Path, settings: dict, name: str = "end-to-end.png") -> None:
    labels, figures, totals = [], [], None
    for row, label in settings["rows"].items():
        results = json.loads((folder / row / "review_results.json").read_text())
        overall, scenarios = results["overall"], results["scenarios"]
        labels.append(label)
        figures.append((overall["passed"], sum(s["decision_right"] for s in scenarios), overall["must_finds_hit"],
                        overall["noise_findings"], sum(s["block_approved"] for s in scenarios)))
        totals = (overall["scenarios"], overall["must_finds"], overall["block_scenarios"])
    assert totals is not None
    count, must_finds, blocks = totals
    names = (f"passed /{count}", f"decision right /{count}", f"must-finds hit /{must_finds}", "noisy findings",
             f"block scenarios approved /{blocks}")
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        xs = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(names))]
        bars = ax.bar(xs, figures[k], width, label=label)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.legend(fontsize=8)
    ax.set_title(settings.get("chart_title") or
                 f"{count} scenarios end to end, the same saved analyzer reports in every row ({settings['title']})")
    fig.tight_layout()
    fig.savefig(folder / name, dpi=90)


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "round5"
    if name not in ROUNDS:
        sys.exit(f"usage: plot_round.py {'|'.join(ROUNDS)}")
    if ROUNDS[name].get("runs"):
        plot_losses(HERE / name, ROUNDS[name])
    if ROUNDS[name].get("rows"):
        plot_end_to_end(HERE / name, ROUNDS[name])
    for chart, more in ROUNDS[name].get("more", {}).items():
        plot_end_to_end(HERE / name, more, chart)
    print(f"wrote the charts in {HERE / name}")
