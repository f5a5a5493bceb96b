"""Gates (thresholds per metric, per reviewer) and the pure promotion decision.

The gates file (`eval/gates.yml`):

```yaml
defaults:                       # every reviewer
  raw_validity: {min: 0.9}
  false_block_rate: {max: 0.2}
reviewers:                      # per-reviewer overrides; null removes a default gate
  sql:
    block_recall: {min: 0.9}
rank_by: [pass_rate, verdict_accuracy, finding_recall]   # how passing checkpoints are ordered
```

`decide` promotes the best checkpoint that passes every gate: best by `rank_by` (each metric in its
better direction, lexicographically), ties going to the earlier step. A metric a gate names that was not
measured (None: no block cases for block_recall, no constrained run for constrained_validity) fails the
gate unless the threshold says `required: false`.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eval.metrics import HIGHER_IS_BETTER

DEFAULT_GATES = Path(__file__).resolve().parent / "gates.yml"


class GatesError(ValueError):
    """A gates file that cannot be used; the message names the file and the key."""


class Threshold(BaseModel):
    """A bound on one metric: at least `min`, at most `max` (either or both)."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    required: bool = Field(default=True, description="An unmeasured metric fails the gate (False: it passes).")

    @model_validator(mode="after")
    def _has_a_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs min or max")
        return self

    def describe(self) -> str:
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + ([f"<= {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


class Gates(BaseModel):
    """All thresholds: defaults for every reviewer, overrides per reviewer, and the ranking of passers."""

    model_config = ConfigDict(extra="forbid")

    defaults: dict[str, Threshold] = Field(default_factory=dict)
    reviewers: dict[str, dict[str, Threshold | None]] = Field(default_factory=dict)
    rank_by: list[str] = Field(default_factory=lambda: ["pass_rate", "verdict_accuracy", "finding_recall"])

    @model_validator(mode="after")
    def _known_metrics(self) -> Gates:
        named = set(self.defaults) | set(self.rank_by) | {m for r in self.reviewers.values() for m in r}
        unknown = sorted(named - set(HIGHER_IS_BETTER))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(HIGHER_IS_BETTER)}")
        if not self.rank_by:
            raise ValueError("rank_by needs at least one metric")
        return self

    def thresholds_for(self, reviewer: str) -> dict[str, Threshold]:
        merged: dict[str, Threshold | None] = {**self.defaults, **self.reviewers.get(reviewer, {})}
        return {metric: t for metric, t in merged.items() if t is not None}


def load_gates(path: Path | None = None) -> Gates:
    """Read a gates YAML file (default `eval/gates.yml`); errors name the file and the key."""
    path = path or DEFAULT_GATES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise GatesError(f"{path}: cannot read the gates file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise GatesError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Gates.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise GatesError(f"{path}: {where}: {first['msg']}") from exc


# --- the decision (pure) ---------------------------------------------------------------------------

class Candidate(BaseModel):
    """One checkpoint's measured metrics (see `eval.metrics.metric_values`)."""

    checkpoint: str
    step: int | None = None
    adapter: str | None = None
    metrics: dict[str, float | None]


class GateCheck(BaseModel):
    metric: str
    threshold: Threshold
    value: float | None
    passed: bool

    def describe(self) -> str:
        shown = "not measured" if self.value is None else f"{self.value:.3g}"
        return f"{self.metric} {shown} (needs {self.threshold.describe()})"


class CandidateResult(BaseModel):
    candidate: Candidate
    checks: list[GateCheck]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]


class PromotionDecision(BaseModel):
    """The outcome for one reviewer: the chosen checkpoint, or none, with every candidate's checks."""

    reviewer: str
    chosen: Candidate | None
    results: list[CandidateResult]
    rank_by: list[str]

    @property
    def promoted(self) -> bool:
        return self.chosen is not None

    def explain(self) -> str:
        if self.chosen is not None:
            return f"{self.reviewer}: promote {self.chosen.checkpoint} (passes every gate; best by {', '.join(self.rank_by)})"
        if not self.results:
            return f"{self.reviewer}: refused: no evaluated checkpoint"
        lines = [f"{self.reviewer}: refused: no checkpoint passes every gate"]
        for r in self.results:
            lines.append(f"  {r.candidate.checkpoint}: " + "; ".join(c.describe() for c in r.failures))
        return "\n".join(lines)


def check(value: float | None, threshold: Threshold) -> bool:
    if value is None:
        return not threshold.required
    if threshold.min is not None and value < threshold.min:
        return False
    return not (threshold.max is not None and value > threshold.max)


def check_candidate(candidate: Candidate, thresholds: dict[str, Threshold]) -> CandidateResult:
    checks = [GateCheck(metric=m, threshold=t, value=candidate.metrics.get(m), passed=check(candidate.metrics.get(m), t))
              for m, t in sorted(thresholds.items())]
    return CandidateResult(candidate=candidate, checks=checks)


def rank_key(candidate: Candidate, rank_by: list[str]) -> tuple:
    """Sort key: better first on each metric in turn, then the earlier step (unknown steps last)."""
    key: list[float] = []
    for metric in rank_by:
        value = candidate.metrics.get(metric)
        if value is None:
            key.append(float("inf"))  # unmeasured ranks last
        else:
            key.append(-value if HIGHER_IS_BETTER[metric] else value)
    return (*key, candidate.step is None, candidate.step or 0)


def decide(reviewer: str, candidates: list[Candidate], gates: Gates) -> PromotionDecision:
    """Choose the best candidate passing every gate of `reviewer`; none when nothing passes."""
    thresholds = gates.thresholds_for(reviewer)
    results = [check_candidate(c, thresholds) for c in candidates]
    passing = [r.candidate for r in results if r.passed]
    chosen = min(passing, key=lambda c: rank_key(c, gates.rank_by)) if passing else None
    return PromotionDecision(reviewer=reviewer, chosen=chosen, results=results, rank_by=gates.rank_by)
