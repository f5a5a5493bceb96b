"""Training outcomes and eval scores for the console: training run folders and eval's score history.

Training runs are read from their folders (`config.json`, `metrics.jsonl`, `checkpoints/step-N/`,
`adapter/`; see training/train.py). Scores, checkpoints' metrics and promotion decisions come from
eval's typed reader (`eval.history.ScoreHistory`); gate thresholds from eval's gates file through
`eval.gates` when it is installed. Nothing here writes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.console.charts import Point, Series, line_chart

log = logging.getLogger(__name__)

MAX_RUN_DEPTH = 3
GRID_METRICS: tuple[str, ...] = (
    "raw_validity",
    "constrained_validity",
    "verdict_accuracy",
    "block_recall",
    "false_block_rate",
    "finding_recall",
    "noise_rate",
    "pass_rate",
    "latency_p95_s",
)
CHART_METRICS: tuple[str, ...] = (
    "raw_validity",
    "verdict_accuracy",
    "block_recall",
    "finding_recall",
    "pass_rate",
)
GateState = Literal["pass", "fail", "no gate", "no value"]


class TrainingRunView(BaseModel):
    """One training run folder as the console shows it."""

    name: str
    path: str
    reviewer: str
    base_model: str = ""
    steps_done: int = 0
    total_steps: int | None = None
    first_loss: float | None = None
    last_loss: float | None = None
    tokens_per_s: float | None = None
    checkpoints: list[int] = Field(default_factory=list)
    has_adapter: bool = False
    loss_svg: str = ""
    problems: list[str] = Field(default_factory=list)


class GateCell(BaseModel):
    metric: str
    value: float | None
    state: GateState
    threshold: str = ""


class MetricRow(BaseModel):
    """One reviewer's latest eval, metric by metric, with the gate result of each."""

    reviewer: str
    run_label: str
    run_id: int
    checkpoint: str | None = None
    cases: int = 0
    passed: int = 0
    cells: list[GateCell]


class CheckpointScores(BaseModel):
    checkpoint: str
    step: int | None
    values: dict[str, float | None]


class PromotionView(BaseModel):
    id: int | None = None
    promoted: bool
    checkpoint: str | None
    step: int | None
    installed_to: str | None
    created_at: str
    training_run: str
    evidence: dict[str, Any]
    table: GateTable | None = None


class ReviewerOutcomes(BaseModel):
    """Everything the Training outcomes page shows for one reviewer."""

    reviewer: str
    runs: list[TrainingRunView]
    checkpoints: dict[str, list[CheckpointScores]] = Field(
        description="Per training run path, in step order."
    )
    score_svgs: dict[str, str] = Field(
        default_factory=dict, description="Per training run path: score chart."
    )
    promotion: PromotionView | None = None
    promotions: list[PromotionView] = Field(default_factory=list)


# --- training run folders ---------------------------------------------------------------------------------------


def find_run_folders(root: Path, depth: int = MAX_RUN_DEPTH) -> list[Path]:
    """Folders under `root` (itself included) that hold a training run's config.json and metrics.jsonl."""
    if not root.is_dir():
        return []
    found: list[Path] = []
    frontier = [root]
    for _level in range(depth + 1):
        next_frontier = []
        for folder in frontier:
            if (folder / "config.json").is_file() and (folder / "metrics.jsonl").is_file():
                found.append(folder)
                continue
            try:
                next_frontier += sorted(
                    p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                )
            except OSError:
                continue
        frontier = [f for f in next_frontier if f.name != "checkpoints"]
    return sorted(found)


def read_metrics_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """metrics.jsonl rows, skipping (and reporting) lines that are not JSON objects."""
    rows, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            problems.append(f"{path.name} line {number} is not JSON")
            continue
        if (
            isinstance(row, dict)
            and isinstance(row.get("step"), int | float)
            and isinstance(row.get("loss"), int | float)
        ):
            rows.append(row)
        else:
            problems.append(f"{path.name} line {number} has no numeric step and loss")
    return rows, problems


def read_run_folder(folder: Path, root: Path) -> TrainingRunView | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        rows, problems = read_metrics_rows(folder / "metrics.jsonl")
    except (OSError, ValueError) as exc:
        log.warning("training run %s unreadable: %s", folder, exc)
        return None
    if not isinstance(config, dict) or not config.get("reviewer"):
        return None
    base = str(config.get("base_model", ""))
    if config.get("gguf_file"):
        base = f"{base}/{config['gguf_file']}"
    steps = sorted(
        int(p.name.removeprefix("step-"))
        for p in (folder / "checkpoints").glob("step-*")
        if p.name.removeprefix("step-").isdigit() and (p / "state.json").is_file()
    )
    speeds = [float(r["tokens_per_s"]) for r in rows if isinstance(r.get("tokens_per_s"), int | float)]
    name = str(folder.relative_to(root)) if folder != root else folder.name
    loss = Series(name="loss", points=[Point(x=float(r["step"]), y=float(r["loss"])) for r in rows])
    return TrainingRunView(
        name=name,
        path=str(folder.resolve()),
        reviewer=str(config["reviewer"]),
        base_model=base,
        steps_done=int(rows[-1]["step"]) if rows else 0,
        total_steps=(config.get("resolved") or {}).get("total_steps"),
        first_loss=float(rows[0]["loss"]) if rows else None,
        last_loss=float(rows[-1]["loss"]) if rows else None,
        tokens_per_s=sum(speeds) / len(speeds) if speeds else None,
        checkpoints=steps,
        has_adapter=(folder / "adapter" / "adapter_config.json").is_file(),
        loss_svg=line_chart(
            [loss],
            title=f"{config['reviewer']}: training loss ({name})",
            x_label="step",
            y_label="loss (answer tokens)",
        ),
        problems=problems,
    )


def training_runs(root: Path) -> list[TrainingRunView]:
    runs = [read_run_folder(folder, root) for folder in find_run_folders(root)]
    return [r for r in runs if r is not None]


# --- eval's score history ---------------------------------------------------------------------------------------


def gate_cell(metric: str, value: float | None, threshold: Any | None) -> GateCell:
    """Pass/fail of one value against one of eval's thresholds (`eval.gates.check`: an unmeasured metric
    fails a required gate)."""
    from eval.gates import check

    if threshold is None:
        return GateCell(metric=metric, value=value, state="no gate")
    passed = check(value, threshold)
    state: GateState = "pass" if passed else "fail"
    if value is None and passed:
        state = "no value"
    return GateCell(metric=metric, value=value, state=state, threshold=threshold.describe())


class ConsoleGates(BaseModel):
    """eval's gates as loaded for the console, or why there are none (the page says so)."""

    model_config = {"arbitrary_types_allowed": True}

    gates: Any | None = None
    source: str

    def thresholds_for(self, reviewer: str) -> dict[str, Any]:
        return self.gates.thresholds_for(reviewer) if self.gates is not None else {}


def load_gates(path: Path | None) -> ConsoleGates:
    """The gates file through eval's own loader (default: eval's packaged `eval/gates.yml`)."""
    from eval.gates import DEFAULT_GATES, GatesError
    from eval.gates import load_gates as eval_load_gates

    path = path or DEFAULT_GATES
    if not path.is_file():
        return ConsoleGates(source=f"{path} (missing: no gate colours)")
    try:
        return ConsoleGates(gates=eval_load_gates(path), source=str(path))
    except GatesError as exc:
        log.warning("cannot use gates %s: %s", path, exc)
        return ConsoleGates(source=f"{path} (not used: {exc})")


class GateTable(BaseModel):
    """A promotion's evidence as a table: each candidate checkpoint × each gate, and the choice."""

    metrics: list[str]
    rows: list[tuple[str, bool, bool, list[GateCell]]] = Field(
        description="(checkpoint, chosen, passed every gate, one cell per metric)"
    )
    rank_by: list[str]
    gates_file: str = ""


def gate_table(evidence: dict[str, Any]) -> GateTable | None:
    """Read `calora promote`'s evidence (its `decision`); None when it is not in that shape."""
    from eval.gates import PromotionDecision

    try:
        decision = PromotionDecision.model_validate(evidence.get("decision"))
    except Exception:  # noqa: BLE001 - older or hand-written evidence is shown as JSON instead
        return None
    metrics = sorted({c.metric for r in decision.results for c in r.checks})
    chosen = decision.chosen.checkpoint if decision.chosen else None
    rows = []
    for result in decision.results:
        by_metric = {c.metric: c for c in result.checks}
        cells = [
            gate_cell(m, by_metric[m].value, by_metric[m].threshold)
            if m in by_metric
            else GateCell(metric=m, value=None, state="no gate")
            for m in metrics
        ]
        rows.append(
            (result.candidate.checkpoint, result.candidate.checkpoint == chosen, result.passed, cells)
        )
    return GateTable(
        metrics=metrics, rows=rows, rank_by=decision.rank_by, gates_file=str(evidence.get("gates_file", ""))
    )


class ScoreReader:
    """eval's ScoreHistory, opened only when its file exists (opening creates the schema)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def history(self) -> Any | None:
        """eval's reader, or None when there is no history file or it cannot be opened (logged)."""
        if not self.path.is_file():
            return None
        import sqlite3

        from eval.history import HistoryError, ScoreHistory

        try:
            return ScoreHistory(self.path)
        except (HistoryError, sqlite3.Error, OSError) as exc:
            log.warning("score history %s not readable: %s", self.path, exc)
            return None

    def metric_rows(self, gates: ConsoleGates) -> list[MetricRow]:
        """Each reviewer's newest eval run, metric by metric, coloured by its gates."""
        from eval.metrics import metric_values

        history = self.history()
        if history is None:
            return []
        newest: dict[str, dict[str, Any]] = {}
        for row in history.scores():
            entry = newest.setdefault(row.metrics.reviewer, {"run_id": -1})
            if row.run.id > entry["run_id"]:
                entry.clear()
                entry.update(run_id=row.run.id, run=row.run, by_decoding={})
            if row.run.id == entry["run_id"]:
                entry["by_decoding"][row.metrics.decoding] = row.metrics
        out = []
        for reviewer in sorted(newest):
            entry = newest[reviewer]
            values = metric_values(entry["by_decoding"])
            thresholds = gates.thresholds_for(reviewer)
            main = entry["by_decoding"].get("raw") or entry["by_decoding"]["constrained"]
            out.append(
                MetricRow(
                    reviewer=reviewer,
                    run_label=entry["run"].label,
                    run_id=entry["run_id"],
                    checkpoint=entry["run"].checkpoint,
                    cases=main.cases,
                    passed=main.passed,
                    cells=[gate_cell(m, values.get(m), thresholds.get(m)) for m in GRID_METRICS],
                )
            )
        return out

    def outcomes(self, reviewer: str, runs: list[TrainingRunView]) -> ReviewerOutcomes:
        from eval.metrics import metric_values

        history = self.history()
        checkpoints: dict[str, list[CheckpointScores]] = {}
        svgs: dict[str, str] = {}
        promotions: list[PromotionView] = []
        if history is not None:
            promotions = [
                PromotionView(
                    id=p.id,
                    table=gate_table(p.evidence),
                    promoted=p.promoted,
                    checkpoint=p.checkpoint,
                    step=p.step,
                    installed_to=p.installed_to,
                    created_at=p.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                    training_run=p.training_run,
                    evidence=p.evidence,
                )
                for p in history.promotions(reviewer=reviewer)
            ]
            promoted_step = {p.training_run: p.step for p in promotions if p.promoted}
            for run in runs:
                scored = [
                    CheckpointScores(
                        checkpoint=c.checkpoint, step=c.step, values=metric_values(c.by_decoding)
                    )
                    for c in history.checkpoint_metrics(run.path, reviewer)
                    if c.by_decoding
                ]
                checkpoints[run.path] = scored
                series = [
                    Series(
                        name=m,
                        marker=promoted_step.get(run.path),
                        points=[
                            Point(x=float(c.step), y=float(c.values[m]), label=c.checkpoint)
                            for c in scored
                            if c.step is not None and c.values.get(m) is not None
                        ],
                    )
                    for m in CHART_METRICS
                ]
                series = [s for s in series if s.points]
                svgs[run.path] = line_chart(
                    series,
                    title=f"{reviewer}: eval scores by checkpoint ({run.name})",
                    x_label="step",
                    y_label="score",
                    y_range=(0.0, 1.0),
                )
        decided = [p for p in promotions if p.promoted]
        return ReviewerOutcomes(
            reviewer=reviewer,
            runs=runs,
            checkpoints=checkpoints,
            score_svgs=svgs,
            promotion=decided[-1] if decided else None,
            promotions=promotions,
        )


PromotionView.model_rebuild()
ReviewerOutcomes.model_rebuild()
