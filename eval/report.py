"""The eval report: markdown + HTML with PNG charts (matplotlib, headless Agg).

Charts:
- `score_vs_checkpoint.png`: per reviewer, each headline metric against the training step (runs of a
  sweep; the base model at step 0), like the seed's score charts;
- `reviewer_metric_grid.png`: reviewers × metrics for every evaluated model (label);
- `base_vs_adapter.png`: bars of the headline metrics per reviewer, one bar per model (base, adapter...).

Input is a list of `ReportRun` (what a results JSON or a stored history run holds), so the same report
comes from `--results` files or from the score history.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from eval.history import ScoreHistory
from eval.results import CaseScore, EvalRunResult, ReviewerMetrics, RunInfo


class ReportError(RuntimeError):
    """Nothing to report, or inputs that cannot be read."""


class ReportRun(BaseModel):
    """One evaluated model (one decoding) as the report needs it."""

    info: RunInfo
    reviewers: dict[str, ReviewerMetrics]
    scores: list[CaseScore]


# (metric attribute, column title); validity is shown per decoding mode.
HEADLINE = [
    ("validity", "contract validity"),
    ("verdict_accuracy", "verdict accuracy"),
    ("block_recall", "block recall"),
    ("finding_recall", "finding recall"),
]
GRID = HEADLINE + [("false_block_rate", "false-block rate"), ("noise_rate", "noise rate"), ("pass_rate", "pass rate")]


def load_runs_for_report(results: list[Path] | None, history: ScoreHistory | None) -> list[ReportRun]:
    """Runs from results JSON files, else every run stored in the history."""
    runs: list[ReportRun] = []
    if results:
        for path in results:
            try:
                run = EvalRunResult.read(path)
            except (OSError, ValueError) as exc:
                raise ReportError(f"{path}: not a results JSON of `calora eval run`: {exc}") from exc
            runs.append(ReportRun(info=run.info, reviewers=run.reviewers, scores=run.scores))
    elif history is not None:
        for stored in history.runs():
            metrics = {row.metrics.reviewer: row.metrics for row in history.scores(run_id=stored.id)}
            info = RunInfo.model_validate(stored.model_dump(exclude={"id", "results_path"}))
            runs.append(ReportRun(info=info, reviewers=metrics, scores=history.case_scores(stored.id)))
    if not runs:
        raise ReportError("nothing to report: give --results files or fill the history with `calora eval run`")
    return runs


def _name(run: ReportRun) -> str:
    return run.info.label if run.info.decoding == "raw" else f"{run.info.label} (constrained)"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _reviewers(runs: Iterable[ReportRun]) -> list[str]:
    return sorted({r for run in runs for r in run.reviewers})


# --- charts ----------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_base_vs_adapter(runs: list[ReportRun], png: Path) -> Path:
    """Grouped bars: for each reviewer and headline metric, one bar per evaluated model."""
    plt = _pyplot()
    reviewers = _reviewers(runs)
    fig, axes = plt.subplots(1, len(reviewers), figsize=(4.2 * len(reviewers), 3.8), squeeze=False, sharey=True)
    width = 0.8 / max(1, len(runs))
    for ax, reviewer in zip(axes[0], reviewers, strict=True):
        for i, run in enumerate(runs):
            m = run.reviewers.get(reviewer)
            values = [getattr(m, attr) if m is not None else None for attr, _ in HEADLINE]
            xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(HEADLINE))]
            bars = ax.bar(xs, [0 if v is None else v for v in values], width, label=_name(run))
            for bar, value in zip(bars, values, strict=True):
                ax.annotate("n/a" if value is None else f"{100 * value:.0f}", (bar.get_x() + bar.get_width() / 2,
                            bar.get_height()), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(HEADLINE)), [t.replace(" ", "\n", 1) for _, t in HEADLINE], fontsize=8)
        ax.set_ylim(0, 1.12)
        ax.set_title(f"{reviewer} ({next((r.reviewers[reviewer].cases for r in runs if reviewer in r.reviewers), 0)} cases)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("share of cases / findings")
    axes[0][-1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def plot_grid(runs: list[ReportRun], png: Path) -> Path:
    """Heatmap: rows = reviewer × model, columns = metrics, cell text = value."""
    plt = _pyplot()
    rows = [(reviewer, run) for reviewer in _reviewers(runs) for run in runs if reviewer in run.reviewers]
    values = [[getattr(run.reviewers[reviewer], attr) for attr, _ in GRID] for reviewer, run in rows]
    lower_better = [attr in ("false_block_rate", "noise_rate") for attr, _ in GRID]
    # Colour is goodness (green = good), so lower-is-better columns are drawn as 1 - value.
    shown = [[float("nan") if v is None else (1 - v if low else v) for v, low in zip(row, lower_better, strict=True)]
             for row in values]
    fig, ax = plt.subplots(figsize=(1.3 * len(GRID) + 2.5, 0.45 * len(rows) + 1.4))
    ax.imshow(shown, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            ax.text(j, i, _pct(value), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(GRID)), [t for _, t in GRID], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{reviewer}: {_name(run)}" for reviewer, run in rows], fontsize=8)
    ax.set_title("reviewer × metric (green = good; false-block and noise rates: lower is better)", fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def plot_score_vs_checkpoint(runs: list[ReportRun], png: Path) -> Path | None:
    """Per reviewer: headline metrics and pass rate against the training step; None without sweep runs."""
    swept = [r for r in runs if r.info.step is not None and r.info.decoding == "raw"]
    if not swept:
        return None
    plt = _pyplot()
    reviewers = _reviewers(swept)
    fig, axes = plt.subplots(1, len(reviewers), figsize=(4.5 * len(reviewers), 3.6), squeeze=False, sharey=True)
    for ax, reviewer in zip(axes[0], reviewers, strict=True):
        points = sorted(((r.info.step, r.reviewers[reviewer]) for r in swept if reviewer in r.reviewers),
                        key=lambda p: p[0])
        steps = [s for s, _ in points]
        for attr, title in HEADLINE + [("pass_rate", "pass rate")]:
            ys = [getattr(m, attr) for _, m in points]
            ax.plot(steps, [float("nan") if y is None else y for y in ys], marker="o", label=title)
        ax.set_title(reviewer)
        ax.set_xlabel("training step (0 = base model)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


# --- text ------------------------------------------------------------------------------------------

def summary_rows(runs: list[ReportRun]) -> list[list[str]]:
    """Header + one row per reviewer × model: the report's main table."""
    header = ["reviewer", "model", "decoding", "pass", "contract validity", "verdict accuracy", "block recall",
              "false-block rate", "finding recall", "noise rate", "hit token cap", "p50 latency", "mean tokens out"]
    rows = [header]
    for reviewer in _reviewers(runs):
        for run in runs:
            m = run.reviewers.get(reviewer)
            if m is None:
                continue
            tokens = "n/a" if m.completion_tokens_mean is None else f"{m.completion_tokens_mean:.0f}"
            rows.append([reviewer, run.info.label, m.decoding, m.pass_count, _pct(m.validity),
                         _pct(m.verdict_accuracy), _pct(m.block_recall), _pct(m.false_block_rate),
                         _pct(m.finding_recall), _pct(m.noise_rate), _pct(m.truncation_rate),
                         f"{m.latency_p50_s:.1f} s", tokens])
    return rows


def case_rows(runs: list[ReportRun]) -> list[list[str]]:
    """Header + one row per case: expected verdict, then each model's verdict / findings hit / pass."""
    header = ["case", "expected"] + [_name(r) for r in runs]
    cases: dict[str, str] = {}
    for run in runs:
        for s in run.scores:
            cases.setdefault(s.case_id, s.expected_verdict.value)
    by_run = [{s.case_id: s for s in run.scores} for run in runs]
    rows = [header]
    for case_id in sorted(cases):
        row = [case_id, cases[case_id]]
        for scores in by_run:
            s = scores.get(case_id)
            if s is None:
                row.append("")
                continue
            got = s.verdict.value if s.verdict is not None else "invalid"
            found = f" {sum(s.must_find_hit)}/{len(s.must_find_hit)} found" if s.must_find_hit else ""
            noise = f" {s.noise_findings} noise" if s.noise_findings else ""
            row.append(f"{'PASS' if s.passed else 'fail'}: {got}{found}{noise}")
        rows.append(row)
    return rows


def _markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def provenance_lines(runs: list[ReportRun]) -> list[str]:
    lines = []
    for run in runs:
        i = run.info
        lines.append(
            f"{_name(run)}: base model `{i.base_model}`" + (f", adapter `{i.adapter}`" if i.adapter else "")
            + f", backend {i.backend}, decoding {i.decoding}, max_new_tokens {i.max_new_tokens}, batch {i.batch_size}"
            + f", cases `{i.cases_path}`, device {i.device or 'n/a'} ({i.dtype or 'n/a'}), commit {i.git_commit or 'n/a'}"
            + f", {i.created_at:%Y-%m-%d %H:%M} UTC"
        )
    return lines


def write_report(runs: list[ReportRun], out: Path, *, title: str = "Reviewer evaluation",
                 commands: str | None = None, notes: str | None = None) -> list[Path]:
    """Write `report.md`, `index.html` and the PNG charts into `out`; returns the paths written."""
    if not runs:
        raise ReportError("no runs to report")
    out.mkdir(parents=True, exist_ok=True)
    charts = [plot_base_vs_adapter(runs, out / "base_vs_adapter.png"), plot_grid(runs, out / "reviewer_metric_grid.png")]
    sweep_chart = plot_score_vs_checkpoint(runs, out / "score_vs_checkpoint.png")
    if sweep_chart is not None:
        charts.append(sweep_chart)
    summary, cases = summary_rows(runs), case_rows(runs)
    md = [f"# {title}", ""]
    if notes:
        md += [notes.strip(), ""]
    md += ["## Results", "", _markdown_table(summary), ""]
    md += [f"![{p.stem}]({p.name})" for p in charts] + [""]
    md += ["## Per case", "", _markdown_table(cases), ""]
    if commands:
        md += ["## Reproduce", "", "```sh", commands.strip(), "```", ""]
    md += ["## What was evaluated", ""] + [f"- {line}" for line in provenance_lines(runs)] + [""]
    md += [("Metric definitions: `eval/metrics.py` (pass = valid contract, right verdict, every must_find hit "
            "within ±2 lines by category or keyword, no noise)."), ""]
    report_md = out / "report.md"
    report_md.write_text("\n".join(md), encoding="utf-8")

    body = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        body.append(f"<p>{html.escape(notes.strip())}</p>")
    body += ["<h2>Results</h2>", _html_table(summary)]
    body += [f'<p><img src="{p.name}" alt="{p.stem}"></p>' for p in charts]
    body += ["<h2>Per case</h2>", _html_table(cases)]
    if commands:
        body += ["<h2>Reproduce</h2>", f"<pre>{html.escape(commands.strip())}</pre>"]
    body += ["<h2>What was evaluated</h2>", "<ul>" + "".join(f"<li>{html.escape(x)}</li>"
                                                             for x in provenance_lines(runs)) + "</ul>"]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}")
    index = out / "index.html"
    index.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                     f"<style>{style}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return [report_md, index, *charts]
