"""Grading the final review of a scenario (what a PR author is shown): pure functions, no model, no I/O.

`calora eval run` grades one reviewer's answer; this grades the synthesized `ReviewResult` that
`reviewers.pipeline.run_pipeline` gives for the whole diff (every reviewer the diff routes to, plus the
evidence of the checks). Definitions, per scenario:

- **decision right**: `result.decision` equals the expected verdict. "incomplete" is never right: an
  incomplete review approves nothing, and it does not block either.
- **must-find hit**: some final finding hits it, by the rule of `eval.metrics.finding_hits` (same path,
  lines within ±2, category or keyword).
- **noise**: a final finding (blocker, major or minor) that hits no must-find. A finding on a
  `must_not_find_paths` file is noise by this rule already (no must-find lies there; the tests check
  it); it is also counted apart as `cross_reviewer_noise`.
- **nits do not count**: they are collapsed in the PR comment and never change the decision, and style-only
  analyzer rules are nits by design, so a nit is neither noise nor a hit. Nits are recorded with their
  sources (`nits`, `FindingGrade.nit`) so a noisy style rule stays visible.
- **false block**: an approve scenario whose decision is block. **block approved**: a block scenario whose
  decision is approve (the worst outcome).
- **pass**: decision right, every must-find hit, no noise.
- **context ablation**: scenarios marked `needs_context` (the defect shows only with other files of the
  repository, the case's `repo/` snapshot) are graded with the context retrieved from the snapshot and again
  without it; `ContextAblation` compares pass rate and must-finds hit, and counts the scenarios whose reviewers
  were shown one of the `context_files` that show the defect (what retrieval found, whatever the model did).

Every final finding keeps its `raised_by` (a reviewer name, or an analyzer such as `checks` or
`checks:ruff/S608`), so `source_figures` can say per analyzer rule, per tool (`tool_of`) or per reviewer how
many must-finds it hit and how much noise it made.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from eval.cases import EvalCase
from eval.metrics import finding_hits, normalize_path
from reviewers.contract import Severity, Verdict
from reviewers.synthesis import MergedFinding, ReviewResult

OVERALL = "overall"


class FindingGrade(BaseModel):
    """One finding of the final review and how it graded."""

    model_config = ConfigDict(extra="forbid")

    path: str
    line: int
    end_line: int | None = None
    severity: Severity
    category: str
    message: str
    raised_by: list[str] = Field(description="Reviewers and analyzers that raised it (merged sources).")
    hits: list[int] = Field(default_factory=list, description="Indices of the must-finds this finding hits.")
    nit: bool = Field(default=False, description="A nit: never noise, never a hit (see the module docstring).")
    noise: bool = Field(default=False, description="Not a nit and hits no must-find.")
    on_forbidden_path: bool = Field(default=False, description="On one of the scenario's must_not_find_paths.")


class ScenarioGrade(BaseModel):
    """How the final review of one scenario graded."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    reviewer: str = Field(description="The scenario's folder reviewer (the pipeline ran every reviewer).")
    expected_verdict: Verdict
    decision: str = Field(description="approve, revise, block, incomplete; 'error' when the pipeline raised.")
    decision_right: bool
    must_find_hit: list[bool] = Field(description="One flag per must-find, in order.")
    must_find_hit_by: list[list[str]] = Field(
        description="Per must-find, the sources (raised_by) of the findings that hit it."
    )
    findings: list[FindingGrade] = Field(default_factory=list, description="Findings first, then nits.")
    noise_findings: int = Field(ge=0)
    cross_reviewer_noise: int = Field(ge=0, description="Noise findings on must_not_find_paths.")
    nits: int = Field(ge=0)
    false_block: bool
    block_approved: bool
    incomplete: bool
    passed: bool
    wall_s: float = Field(ge=0, description="Wall time of the pipeline for this diff (model load excluded).")
    error: str | None = None
    needs_context: bool = Field(default=False, description="The defect shows only with the repository's files.")
    context_paths: list[str] = Field(
        default_factory=list, description="Files the reviewers were shown context from (none without context)."
    )
    context_file_shown: bool | None = Field(
        default=None, description="Whether one of the scenario's context_files was among them (None: it names none)."
    )


class ReviewSummary(BaseModel):
    """The figures of a set of scenarios (one reviewer folder, or all of them)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A reviewer folder, or 'overall'.")
    scenarios: int
    passed: int
    pass_rate: float
    decision_accuracy: float
    must_finds: int
    must_finds_hit: int
    finding_recall: float | None = Field(description="None when the scenarios hold no must-find.")
    noise_findings: int
    noisy_scenarios: int
    cross_reviewer_noise: int
    nits: int
    approve_scenarios: int
    false_blocks: int
    approve_findings: int = Field(description="Findings (not nits) on approve scenarios, all together.")
    block_scenarios: int
    blocks_approved: int
    incomplete: int
    errors: int
    wall_mean_s: float
    wall_p50_s: float
    wall_max_s: float


class SourceFigures(BaseModel):
    """What one source (a reviewer, or an analyzer rule) contributed to the final reviews."""

    model_config = ConfigDict(extra="forbid")

    source: str
    findings: int = Field(description="Final findings (not nits) it raised, alone or merged with others.")
    must_finds_hit: int = Field(description="Must-finds hit by a finding it raised.")
    alone_hit: int = Field(description="Must-finds that only its findings hit.")
    noise_findings: int
    approve_findings: int = Field(description="Findings it raised on approve scenarios.")
    nits: int


class ReviewGradingInfo(BaseModel):
    """What was run: backend and model, where the scenarios came from, how long the backend took to load."""

    model_config = ConfigDict(extra="forbid")

    label: str
    backend: str = Field(description="'none' (evidence only), transformers, engine or openai.")
    base_model: str | None = None
    adapters: str | None = None
    cases_path: str
    reviewers: list[str] | None = Field(default=None, description="Scenario folders graded (None: all).")
    load_s: float = 0.0
    command: str | None = None
    git_commit: str | None = None
    context: bool = Field(default=False, description="Reviewers got context from the scenarios' repo/ snapshots.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ContextAblation(BaseModel):
    """The needs_context scenarios graded with the repository's context and again without it."""

    model_config = ConfigDict(extra="forbid")

    scenarios: int
    with_context: ReviewSummary
    without_context: ReviewSummary
    context_file_shown: int = Field(description="Scenarios whose reviewers were shown a file that shows the defect.")
    without_grades: list[ScenarioGrade] = Field(description="The grades of the runs without context.")


class ReviewGradingRun(BaseModel):
    """The results JSON of `calora eval review`."""

    model_config = ConfigDict(extra="forbid")

    info: ReviewGradingInfo
    scenarios: list[ScenarioGrade]
    reviewers: dict[str, ReviewSummary]
    overall: ReviewSummary
    sources: list[SourceFigures] = Field(description="Per raised_by source (a reviewer, or an analyzer rule).")
    tools: list[SourceFigures] = Field(description="Per reviewer or analyzer tool (rules of one tool together).")
    context_ablation: ContextAblation | None = Field(
        default=None, description="With vs without context on the needs_context scenarios (context runs only)."
    )


# --- grading -----------------------------------------------------------------------------------------


def _grade_finding(finding: MergedFinding, case: EvalCase, nit: bool, forbidden: set[str]) -> FindingGrade:
    hits = [] if nit else [i for i, must in enumerate(case.must_find) if finding_hits(finding, must)]
    return FindingGrade(
        path=finding.path, line=finding.line, end_line=finding.end_line, severity=finding.severity,
        category=finding.category.value, message=finding.message, raised_by=list(finding.raised_by), hits=hits,
        nit=nit, noise=not nit and not hits, on_forbidden_path=normalize_path(finding.path) in forbidden,
    )


def grade_review(
    case: EvalCase, result: ReviewResult, wall_s: float, context_paths: Sequence[str] = ()
) -> ScenarioGrade:
    """Grade the final review of one scenario (rules in the module docstring); `context_paths` are the files
    its reviewers were shown context from."""
    forbidden = {normalize_path(p) for p in case.must_not_find_paths}
    graded = [_grade_finding(f, case, False, forbidden) for f in result.findings]
    graded += [_grade_finding(f, case, True, forbidden) for f in result.nits]
    hit_by: list[list[str]] = [[] for _ in case.must_find]
    for f in graded:
        for i in f.hits:
            hit_by[i].extend(s for s in f.raised_by if s not in hit_by[i])
    hits = [bool(sources) for sources in hit_by]
    noise = [f for f in graded if f.noise]
    decision = result.decision
    right = decision == case.verdict.value
    return ScenarioGrade(
        case_id=case.id, reviewer=case.reviewer, expected_verdict=case.verdict, decision=decision,
        decision_right=right, must_find_hit=hits, must_find_hit_by=hit_by, findings=graded,
        noise_findings=len(noise), cross_reviewer_noise=sum(f.on_forbidden_path for f in noise),
        nits=sum(f.nit for f in graded),
        false_block=case.verdict is Verdict.approve and decision == "block",
        block_approved=case.verdict is Verdict.block and decision == "approve",
        incomplete=decision == "incomplete", passed=right and all(hits) and not noise, wall_s=wall_s,
        needs_context=case.needs_context, context_paths=sorted(set(context_paths)),
        context_file_shown=bool(set(case.context_files) & set(context_paths)) if case.context_files else None,
    )


def grade_error(case: EvalCase, error: str, wall_s: float) -> ScenarioGrade:
    """A scenario whose pipeline raised: nothing decided, nothing hit; it fails."""
    return ScenarioGrade(
        case_id=case.id, reviewer=case.reviewer, expected_verdict=case.verdict, decision="error",
        decision_right=False, must_find_hit=[False] * len(case.must_find),
        must_find_hit_by=[[] for _ in case.must_find], noise_findings=0, cross_reviewer_noise=0, nits=0,
        false_block=False, block_approved=False, incomplete=False, passed=False, wall_s=wall_s, error=error,
        needs_context=case.needs_context,
    )


# --- summaries ---------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarize_grades(name: str, grades: Sequence[ScenarioGrade]) -> ReviewSummary:
    """The figures of `grades`; raises ValueError when there are none."""
    if not grades:
        raise ValueError(f"no graded scenarios for {name!r}")
    n = len(grades)
    hits = [h for g in grades for h in g.must_find_hit]
    approves = [g for g in grades if g.expected_verdict is Verdict.approve]
    blocks = [g for g in grades if g.expected_verdict is Verdict.block]
    walls = [g.wall_s for g in grades]
    passed = sum(g.passed for g in grades)
    return ReviewSummary(
        name=name, scenarios=n, passed=passed, pass_rate=passed / n,
        decision_accuracy=sum(g.decision_right for g in grades) / n,
        must_finds=len(hits), must_finds_hit=sum(hits), finding_recall=sum(hits) / len(hits) if hits else None,
        noise_findings=sum(g.noise_findings for g in grades),
        noisy_scenarios=sum(g.noise_findings > 0 for g in grades),
        cross_reviewer_noise=sum(g.cross_reviewer_noise for g in grades), nits=sum(g.nits for g in grades),
        approve_scenarios=len(approves), false_blocks=sum(g.false_block for g in approves),
        approve_findings=sum(1 for g in approves for f in g.findings if not f.nit),
        block_scenarios=len(blocks), blocks_approved=sum(g.block_approved for g in blocks),
        incomplete=sum(g.incomplete for g in grades), errors=sum(g.error is not None for g in grades),
        wall_mean_s=statistics.fmean(walls), wall_p50_s=_median(walls), wall_max_s=max(walls),
    )


def summarize_by_reviewer(grades: Sequence[ScenarioGrade]) -> dict[str, ReviewSummary]:
    """Figures per scenario folder reviewer, in name order."""
    names = sorted({g.reviewer for g in grades})
    return {r: summarize_grades(r, [g for g in grades if g.reviewer == r]) for r in names}


def tool_of(source: str) -> str:
    """The tool of a source: `checks:ruff/S608` -> `checks:ruff`; a reviewer name stays itself."""
    return source.split("/", 1)[0]


def source_figures(
    grades: Iterable[ScenarioGrade], group: Callable[[str], str] = lambda source: source
) -> list[SourceFigures]:
    """Per `raised_by` source (or per `group(source)`, e.g. `tool_of`): findings, must-finds hit (and hit by
    it alone), noise; most hits first. A finding raised by two sources of one group counts once for it."""
    table: dict[str, dict[str, int]] = {}

    def row(name: str) -> dict[str, int]:
        return table.setdefault(name, dict.fromkeys(
            ("findings", "must_finds_hit", "alone_hit", "noise_findings", "approve_findings", "nits"), 0))

    for g in grades:
        for f in g.findings:
            for name in dict.fromkeys(group(s) for s in f.raised_by):
                r = row(name)
                if f.nit:
                    r["nits"] += 1
                    continue
                r["findings"] += 1
                r["noise_findings"] += f.noise
                r["approve_findings"] += g.expected_verdict is Verdict.approve
        for sources in g.must_find_hit_by:
            names = list(dict.fromkeys(group(s) for s in sources))
            for name in names:
                row(name)["must_finds_hit"] += 1
            if len(names) == 1:
                row(names[0])["alone_hit"] += 1
    return sorted((SourceFigures(source=s, **v) for s, v in table.items()),
                  key=lambda s: (-s.must_finds_hit, s.noise_findings, s.source))


def context_ablation(
    with_context: Sequence[ScenarioGrade], without_context: Sequence[ScenarioGrade]
) -> ContextAblation | None:
    """The needs_context scenarios of `with_context` against their runs `without_context` (same ids)."""
    graded = {g.case_id for g in without_context}
    paired = [g for g in with_context if g.needs_context and g.case_id in graded]
    if not paired:
        return None
    ids = {g.case_id for g in paired}
    without = [g for g in without_context if g.case_id in ids]
    return ContextAblation(
        scenarios=len(paired), with_context=summarize_grades("with context", paired),
        without_context=summarize_grades("without context", without),
        context_file_shown=sum(bool(g.context_file_shown) for g in paired), without_grades=without,
    )


def build_run(
    info: ReviewGradingInfo, grades: list[ScenarioGrade], without_context: Sequence[ScenarioGrade] = ()
) -> ReviewGradingRun:
    """The results of a grading run: scenarios, per-reviewer and overall figures, per-source figures, and the
    context ablation when the needs_context scenarios were also run `without_context`."""
    return ReviewGradingRun(
        info=info, scenarios=grades, reviewers=summarize_by_reviewer(grades),
        overall=summarize_grades(OVERALL, grades), sources=source_figures(grades),
        tools=source_figures(grades, tool_of), context_ablation=context_ablation(grades, without_context),
    )


def context_line(run: ReviewGradingRun) -> str | None:
    """One line on repository context: the ablation, or the needs_context figures of a run without context;
    None when the run holds no needs_context scenario."""
    def figures(s: ReviewSummary) -> str:
        return (f"pass {s.passed}/{s.scenarios} ({_pct(s.pass_rate)}), must-finds hit {s.must_finds_hit}/"
                f"{s.must_finds} ({_pct(s.finding_recall)})")

    ablation = run.context_ablation
    if ablation is not None:
        return (f"Context ablation on {ablation.scenarios} needs_context scenarios: with context "
                f"{figures(ablation.with_context)}; without {figures(ablation.without_context)}; a file showing "
                f"the defect was retrieved in {ablation.context_file_shown}/{ablation.scenarios}.")
    needing = [g for g in run.scenarios if g.needs_context]
    if not needing:
        return None
    state = "off" if not run.info.context else "on, but no snapshot was run without it"
    return (f"Repository context: {state}; the {len(needing)} needs_context scenarios: "
            f"{figures(summarize_grades('needs context', needing))}.")


# --- markdown ----------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _summary_row(s: ReviewSummary) -> str:
    return (f"| {s.name} | {s.passed}/{s.scenarios} ({_pct(s.pass_rate)}) | {_pct(s.decision_accuracy)} | "
            f"{s.must_finds_hit}/{s.must_finds} ({_pct(s.finding_recall)}) | {s.noise_findings} "
            f"({s.noisy_scenarios} scen.) | {s.false_blocks}/{s.approve_scenarios} | "
            f"{s.blocks_approved}/{s.block_scenarios} | {s.incomplete} | {s.nits} | {s.wall_p50_s:.2f} / "
            f"{s.wall_max_s:.2f} |")


def _cell(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_markdown(run: ReviewGradingRun) -> str:
    """The report: figures per reviewer and overall, per source, then every scenario and its findings."""
    info = run.info
    lines = [
        f"# End-to-end review grading: {info.label}", "",
        f"Backend **{info.backend}**" + (f", base model `{info.base_model}`" if info.base_model else "")
        + (f", adapters `{info.adapters}`" if info.adapters else "")
        + f"; scenarios from `{info.cases_path}`; backend load {info.load_s:.1f} s.",
        "", ("A scenario passes when the decision is right, every must-find is hit and no finding is noise "
        "(a non-nit finding that hits no must-find). Nits are neither noise nor hits."), "",
        *([line, ""] if (line := context_line(run)) else []),
        ("| reviewer | passed | decision right | must-finds hit | noise findings | false blocks | "
        "blocks approved | incomplete | nits | wall p50 / max (s) |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_summary_row(s) for s in run.reviewers.values()]
    lines.append(_summary_row(run.overall).replace(f"| {OVERALL} |", f"| **{OVERALL}** |", 1))
    for title, table in (("Per tool", run.tools), ("Per source", run.sources)):
        if not table:
            continue
        lines += ["", f"## {title}", "", ("| raised by | findings | must-finds hit (alone) | noise | "
                  "on approve scenarios | nits |"), "|---|---|---|---|---|---|"]
        lines += [f"| {s.source} | {s.findings} | {s.must_finds_hit} ({s.alone_hit}) | {s.noise_findings} | "
                  f"{s.approve_findings} | {s.nits} |" for s in table]
    lines += ["", "## Scenarios", "", "| scenario | expected | decision | must-finds | noise | pass | wall (s) |",
              "|---|---|---|---|---|---|---|"]
    for g in run.scenarios:
        hits = f"{sum(g.must_find_hit)}/{len(g.must_find_hit)}"
        decision = g.decision + (f" ({_cell(g.error, 60)})" if g.error else "")
        lines.append(f"| {g.case_id} | {g.expected_verdict.value} | {decision} | {hits} | {g.noise_findings} | "
                     f"{'yes' if g.passed else 'no'} | {g.wall_s:.2f} |")
    findings = [(g, f) for g in run.scenarios for f in g.findings]
    if findings:
        lines += ["", "## Findings of the final reviews", "",
                  "| scenario | where | severity | raised by | graded | message |", "|---|---|---|---|---|---|"]
        for g, f in findings:
            where = f"{f.path}:{f.line}" + (f"-{f.end_line}" if f.end_line and f.end_line != f.line else "")
            graded = "nit" if f.nit else ("noise" if f.noise else "hit " + ",".join(str(i + 1) for i in f.hits))
            lines.append(f"| {g.case_id} | `{_cell(where, 70)}` | {f.severity.value} | {', '.join(f.raised_by)} | "
                         f"{graded} | {_cell(f.message)} |")
    return "\n".join(lines) + "\n"
