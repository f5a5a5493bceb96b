"""Running the whole review pipeline over scenario folders and writing what `calora eval review` reports.

The I/O shell around `eval.review_grading`: each scenario's diff goes through
`reviewers.pipeline.run_pipeline` exactly as `calora review --diff` sends it (every reviewer the diff routes
to, the evidence of the checks, synthesis), and the final `ReviewResult` is graded. With context on, a
scenario's `repo/` snapshot is the reviewed head the reviewers' context is read from (as `calora review --git`
reads the repository; its copies of the changed files are the whole files the analyzers get, as the App
fetches them), and the needs_context scenarios run once more without it for the ablation. Charts use
matplotlib, imported only when they are drawn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from eval.cases import EvalCase, load_cases
from eval.review_grading import (
    OVERALL,
    ReviewGradingInfo,
    ReviewGradingRun,
    ScenarioGrade,
    build_run,
    context_line,
    grade_error,
    grade_review,
    render_markdown,
)
from reviewers.backends.base import ReviewerBackend
from reviewers.context.source import DirectorySource
from reviewers.routing import whole_file_paths
from reviewers.slicing import SliceLimits
from reviewers.unified_diff import ParsedDiff, read_diff

if TYPE_CHECKING:
    from reviewers.checks import CheckReport

log = logging.getLogger(__name__)

RESULTS_JSON = "review_results.json"
REPORT_MD = "review_report.md"
SNAPSHOT_DIR = "repo"  # <reviewer>/<case>/repo/: the repository at the head, for context


class ScenarioError(ValueError):
    """A scenario folder that is not a set of `<reviewer>/<case>/` scenarios."""


def _evidence_file(folder: Path, case: EvalCase) -> Path:
    return folder / (case.id.replace("/", "__") + ".json")


def context_source_for(case: EvalCase) -> DirectorySource | None:
    """The scenario's `repo/` snapshot as the reviewed head, when it has one."""
    folder = Path(case.source) / SNAPSHOT_DIR if case.source else None
    return DirectorySource(folder) if folder is not None and folder.is_dir() else None


def snapshot_files(diff: ParsedDiff, source: DirectorySource | None) -> dict[str, str]:
    """The whole new texts the App would fetch for the analyzers, read from the scenario's snapshot."""
    if source is None:
        return {}
    found = {path: source.read(path) for path in whole_file_paths(diff)}
    return {path: text for path, text in found.items() if text is not None}


def review_scenario(
    case: EvalCase, backend: ReviewerBackend | None, limits: SliceLimits | None = None,
    *, evidence_dir: Path | None = None, save_evidence: Path | None = None, context: bool = True,
) -> ScenarioGrade:
    """Run what a PR gets on the scenario's diff and grade the final review; a raising pipeline fails it.

    `save_evidence` writes the analyzers' report per scenario; `evidence_dir` reuses such reports instead of
    running the analyzers (a GPU machine without the tools grades the same evidence as the CPU one). With
    `context`, the reviewers get context from the scenario's `repo/` snapshot when it has one.
    """
    evidence = _saved_evidence(evidence_dir, case)
    grade, checks = _review(case, backend, limits, evidence, context_source_for(case) if context else None)
    _save_evidence(save_evidence, case, checks)
    return grade


def _saved_evidence(evidence_dir: Path | None, case: EvalCase) -> CheckReport | None:
    from reviewers.checks import CheckReport

    if evidence_dir is None:
        return None
    return CheckReport.model_validate_json(_evidence_file(evidence_dir, case).read_text())


def _save_evidence(save_evidence: Path | None, case: EvalCase, checks: CheckReport | None) -> None:
    if save_evidence is not None and checks is not None:
        save_evidence.mkdir(parents=True, exist_ok=True)
        _evidence_file(save_evidence, case).write_text(checks.model_dump_json())


def _review(
    case: EvalCase, backend: ReviewerBackend | None, limits: SliceLimits | None, evidence: CheckReport | None,
    source: DirectorySource | None,
) -> tuple[ScenarioGrade, CheckReport | None]:
    """One pipeline run of a scenario, graded, with the analyzers' report it used (to reuse it)."""
    from reviewers.pipeline import run_pipeline

    count = getattr(backend, "count_tokens", None)
    started = time.perf_counter()
    try:
        diff = read_diff(case.request.diff)
        run = run_pipeline(diff, backend, task=case.request.task, limits=limits, count_tokens=count,
                           file_contents=snapshot_files(diff, source), evidence=evidence, context_source=source)
    except Exception as exc:  # one broken scenario must not lose the others' grades
        log.exception("scenario %s: the pipeline raised", case.id)
        return grade_error(case, f"{type(exc).__name__}: {exc}", time.perf_counter() - started), None
    shown = [snippet.path for request in run.requests for snippet in request.context]
    return grade_review(case, run.result, run.seconds, shown), run.checks


def load_scenario_cases(cases_dir: Path, reviewers: list[str] | None = None) -> list[EvalCase]:
    """The scenario cases under `cases_dir` (only scenario folders: an eval.jsonl has no whole diff)."""
    cases = load_cases(cases_dir, reviewers)
    not_scenarios = [c.id for c in cases if not c.source or not Path(c.source).is_dir()]
    if not_scenarios:
        raise ScenarioError(f"{cases_dir}: {len(not_scenarios)} case(s) are eval.jsonl records, not scenario "
                            "folders (<reviewer>/<case>/diff.patch + expected.json); `calora eval review` grades "
                            "whole diffs only")
    return cases


def grade_scenarios(
    cases_dir: Path,
    backend: ReviewerBackend | None,
    reviewers: list[str] | None = None,
    *,
    limits: SliceLimits | None = None,
    info: ReviewGradingInfo | None = None,
    progress: Callable[[str], None] | None = None,
    evidence_dir: Path | None = None,
    save_evidence: Path | None = None,
    context: bool = True,
) -> ReviewGradingRun:
    """Grade the final review of every scenario under `cases_dir` (only the `reviewers` folders when given).

    `backend=None` runs the evidence only (no model), as `calora eval review --backend none` does. With
    `context`, scenarios with a `repo/` snapshot give their reviewers context from it, and the needs_context
    ones run again without it (same evidence) for the run's `context_ablation`.
    """
    cases = load_scenario_cases(cases_dir, reviewers)
    grades: list[ScenarioGrade] = []
    without_context: list[ScenarioGrade] = []
    for n, case in enumerate(cases, 1):
        evidence = _saved_evidence(evidence_dir, case)
        source = context_source_for(case) if context else None
        grade, checks = _review(case, backend, limits, evidence, source)
        _save_evidence(save_evidence, case, checks)
        line = (f"[{n}/{len(cases)}] {case.id}: {grade.decision} (expected {case.verdict.value}), "
                f"{'pass' if grade.passed else 'fail'}, {grade.wall_s:.1f} s")
        if source is not None and case.needs_context:
            # Only the context differs between the two runs: the analyzers' report is reused.
            alone, _checks = _review(case, backend, limits, checks or evidence, None)
            without_context.append(alone)
            line += f"; without context {alone.decision}, {'pass' if alone.passed else 'fail'}"
        if progress:
            progress(line)
        grades.append(grade)
    if info is None:
        info = ReviewGradingInfo(label=getattr(backend, "name", None) or "evidence", backend=(
            getattr(backend, "name", None) or "none") if backend is not None else "none", cases_path=str(cases_dir),
            reviewers=reviewers)
    info = info.model_copy(update={"context": context})
    run = build_run(info, grades, without_context)
    if progress and (line := context_line(run)):
        progress(line)
    return run


# --- outputs -----------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_by_reviewer(run: ReviewGradingRun, png: Path) -> Path:
    """Grouped bars per reviewer and overall: pass rate, decision right, must-finds hit."""
    plt = _pyplot()
    rows = [*run.reviewers.values(), run.overall]
    metrics = [("pass_rate", "pass"), ("decision_accuracy", "decision right"), ("finding_recall", "must-finds hit")]
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 3, 4))
    width = 0.8 / len(metrics)
    for i, (attr, title) in enumerate(metrics):
        values = [getattr(s, attr) for s in rows]
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(rows))]
        bars = ax.bar(xs, [0 if v is None else v for v in values], width, label=title)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate("n/a" if value is None else f"{100 * value:.0f}", (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(rows)), [f"{s.name}\n({s.scenarios})" for s in rows], fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("share of scenarios / must-finds")
    ax.set_title(f"final review per reviewer: {run.info.label}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(plt, fig, png)


def plot_errors(run: ReviewGradingRun, png: Path) -> Path:
    """Counts per reviewer: noise findings, false blocks, blocks approved, incomplete reviews."""
    plt = _pyplot()
    rows = list(run.reviewers.values())
    metrics = [("noise_findings", "noise findings"), ("false_blocks", "false blocks"),
               ("blocks_approved", "blocks approved"), ("incomplete", "incomplete")]
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 3, 4))
    width = 0.8 / len(metrics)
    for i, (attr, title) in enumerate(metrics):
        values = [getattr(s, attr) for s in rows]
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(rows))]
        bars = ax.bar(xs, values, width, label=title)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(str(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom", fontsize=7)
    ax.set_xticks(range(len(rows)), [s.name for s in rows], fontsize=8)
    ax.set_ylabel("count (lower is better)")
    ax.set_title(f"what went wrong, per reviewer: {run.info.label} ({OVERALL}: {run.overall.noise_findings} noise, "
                 f"{run.overall.blocks_approved} blocks approved)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, png)


def plot_sources(run: ReviewGradingRun, png: Path) -> Path | None:
    """Per raised_by source (reviewer or analyzer rule): must-finds hit vs noise findings; None if no finding."""
    if not run.sources:
        return None
    plt = _pyplot()
    # The 30 sources with the most hits plus noise, so that a noisy rule with no hit still shows.
    sources = sorted(run.sources, key=lambda s: -(s.must_finds_hit + s.noise_findings))[:30]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(sources) + 1.4))
    ys = range(len(sources))
    ax.barh([y - 0.2 for y in ys], [s.must_finds_hit for s in sources], 0.4, label="must-finds hit")
    ax.barh([y + 0.2 for y in ys], [s.noise_findings for s in sources], 0.4, label="noise findings")
    ax.set_yticks(list(ys), [s.source for s in sources], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("count")
    ax.set_title(f"per source: {run.info.label}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, png)


def _save(plt, fig, png: Path) -> Path:
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def write_outputs(run: ReviewGradingRun, out: Path, charts: bool = True) -> list[Path]:
    """The results JSON, the markdown report and (with `charts`) the PNG charts under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS_JSON
    results.write_text(run.model_dump_json(indent=2), encoding="utf-8")
    report = out / REPORT_MD
    paths = [results, report]
    pngs: list[Path] = []
    if charts:
        pngs = [plot_by_reviewer(run, out / "review_by_reviewer.png"), plot_errors(run, out / "review_errors.png")]
        sources = plot_sources(run, out / "review_sources.png")
        pngs += [sources] if sources else []
    markdown = render_markdown(run)
    if pngs:
        markdown += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in pngs) + "\n"
    report.write_text(markdown, encoding="utf-8")
    return paths + pngs


def read_results(path: Path) -> ReviewGradingRun:
    """A results JSON written by `write_outputs`."""
    return ReviewGradingRun.model_validate_json(path.read_text(encoding="utf-8"))
