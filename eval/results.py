"""What an eval produces, as typed records: per case, per reviewer, per run (the results JSON).

These cross three boundaries (the results JSON on disk, the score history, the report), so each is a
pydantic model; the scoring that fills them lives in `eval.metrics` and is pure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reviewers.contract import ReviewerOutput, Verdict

Decoding = Literal["raw", "constrained"]


class CaseResult(BaseModel):
    """What a model answered for one case, before grading."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    reviewer: str
    decoding: Decoding = "raw"
    raw: str = Field(default="", description="The generated text (empty when the backend does not expose it).")
    output: ReviewerOutput | None = Field(default=None, description="The parsed answer when it kept the contract.")
    error: str | None = Field(default=None, description="Why the answer broke the contract, or failed.")
    latency_s: float = Field(ge=0)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = Field(default=False, description="Generation stopped at max_new_tokens.")

    @property
    def valid(self) -> bool:
        return self.output is not None


class CaseScore(BaseModel):
    """How one answer grades against its case."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    reviewer: str
    valid: bool
    expected_verdict: Verdict
    verdict: Verdict | None = Field(description="The answer's verdict; None when the answer is invalid.")
    must_find_hit: list[bool] = Field(description="One flag per must_find of the case, in order.")
    noise_findings: int = Field(ge=0, description="Findings on must_not_find_paths, or any finding on an approve case.")
    passed: bool
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    truncated: bool = False
    error: str | None = None

    @property
    def verdict_correct(self) -> bool:
        return self.verdict == self.expected_verdict


class ReviewerMetrics(BaseModel):
    """The metrics of one reviewer over its cases (one decoding mode). None = not defined for these cases."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str
    decoding: Decoding = "raw"
    cases: int
    passed: int
    validity: float = Field(description="Share of answers that parse and validate as ReviewerOutput.")
    verdict_accuracy: float = Field(description="Share of cases with the expected verdict (invalid = wrong).")
    block_recall: float | None = Field(description="Of the cases expected to block, the share that blocked.")
    false_block_rate: float | None = Field(description="Of the approve (clean) cases, the share that blocked.")
    finding_recall: float | None = Field(description="Share of must_find hit (±2 lines, category or keyword).")
    noise_rate: float = Field(description="Share of cases with at least one noise finding.")
    noise_findings: int
    pass_rate: float
    truncation_rate: float = Field(default=0.0, description="Share of answers that hit max_new_tokens.")
    latency_mean_s: float
    latency_p50_s: float
    latency_p95_s: float
    prompt_tokens_mean: float | None = None
    completion_tokens_mean: float | None = None
    completion_tokens_per_s: float | None = None

    @property
    def pass_count(self) -> str:
        """The seed's "24/24" form."""
        return f"{self.passed}/{self.cases}"


class RunInfo(BaseModel):
    """What was evaluated: the model, its adapter, where the cases came from, how it decoded."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="Short name shown in tables and charts, e.g. 'base' or 'step-40'.")
    base_model: str
    adapter: str | None = Field(default=None, description="Adapter folder, or a folder of <reviewer>/ adapters.")
    backend: str
    decoding: Decoding = "raw"
    cases_path: str
    max_new_tokens: int | None = None
    batch_size: int = Field(default=1, ge=1, description="Cases answered together; >1 makes latency a batch's.")
    training_run: str | None = None
    checkpoint: str | None = None
    step: int | None = None
    git_commit: str | None = None
    command: str | None = Field(default=None, description="The command line that produced this run.")
    device: str | None = None
    dtype: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class EvalRunResult(BaseModel):
    """One model over a set of cases: the results JSON written by `calora eval run`."""

    model_config = ConfigDict(extra="forbid")

    info: RunInfo
    results: list[CaseResult]
    scores: list[CaseScore]
    reviewers: dict[str, ReviewerMetrics]

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> EvalRunResult:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))
