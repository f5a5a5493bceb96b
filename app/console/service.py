"""What the console's routes share: settings, the readers, and the JSON shapes of the API."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from app.console.outcomes import (
    ConsoleGates,
    MetricRow,
    ReviewerOutcomes,
    ScoreReader,
    TrainingRunView,
    load_gates,
    training_runs,
)
from app.console.records import ReviewFilter, ReviewReader, ReviewSummary
from app.console.roles import RoleMap, role_map, summarize_roles
from app.console.settings import ConsoleSettings
from app.console.views import commit_url, github_web_url, pull_url
from app.settings import Settings
from reviewers.routing import REVIEWER_NAMES

GRID_REVIEWS = 20


class ReviewLinks(BaseModel):
    console: str | None
    api: str | None
    pull_request: str
    commit: str


class ReviewItem(BaseModel):
    """A review as GET /api/reviews lists it."""

    review: ReviewSummary
    links: ReviewLinks
    key: str


class GridCell(BaseModel):
    verdict: str | None = None
    status: str | None = None
    findings: int = 0


class GridColumn(BaseModel):
    review_id: int
    label: str
    pr_key: str
    head_sha: str
    decision: str | None


class ReviewerGrid(BaseModel):
    """Reviewers × recent reviews (verdicts) and reviewers × metrics of the latest eval (gates)."""

    columns: list[GridColumn]
    rows: dict[str, list[GridCell | None]]
    metrics: list[MetricRow]
    metric_names: list[str]
    gates_source: str


@dataclass
class Console:
    """The console's shared state, built once by `mount_console`."""

    settings: Settings
    console: ConsoleSettings
    reviews: ReviewReader
    scores: ScoreReader

    @property
    def token(self) -> str | None:
        return self.console.console_token.get_secret_value() if self.console.console_token else None

    @property
    def web(self) -> str:
        return github_web_url(self.settings.github_api_url)

    def item(self, summary: ReviewSummary) -> ReviewItem:
        return ReviewItem(
            review=summary,
            key=f"j{summary.id}",
            links=ReviewLinks(
                console=f"/console/reviews/{summary.id}",
                api=f"/api/reviews/{summary.id}",
                pull_request=pull_url(self.web, summary.owner, summary.repo, summary.pull_number),
                commit=commit_url(self.web, summary.owner, summary.repo, summary.head_sha),
            ),
        )

    def list_items(self, wanted: ReviewFilter) -> list[ReviewItem]:
        return [self.item(s) for s in self.reviews.list_reviews(wanted)]

    def gates(self) -> ConsoleGates:
        return load_gates(self.console.console_gates)

    def grid(self) -> ReviewerGrid:
        recent = [  # jobs whose review recorded its run (a job done by another runner has no verdicts)
            s for s in self.reviews.list_reviews(ReviewFilter(limit=GRID_REVIEWS, state="done")) if s.outcome_status
        ]
        recent.reverse()  # oldest left, newest right, like a timeline
        reviewers = sorted({v.reviewer for s in recent for v in s.reviewers} | set(REVIEWER_NAMES))
        rows: dict[str, list[GridCell | None]] = {}
        for name in reviewers:
            cells: list[GridCell | None] = []
            for summary in recent:
                own = next((v for v in summary.reviewers if v.reviewer == name), None)
                cells.append(
                    GridCell(verdict=own.verdict, status=own.status, findings=own.findings) if own else None
                )
            rows[name] = cells
        gates = self.gates()
        from app.console.outcomes import GRID_METRICS

        return ReviewerGrid(
            columns=[
                GridColumn(
                    review_id=s.id,
                    label=f"{s.repo}#{s.pull_number}",
                    pr_key=f"{s.full_name}#{s.pull_number}",
                    head_sha=s.head_sha,
                    decision=s.decision,
                )
                for s in recent
            ],
            rows=rows,
            metrics=self.scores.metric_rows(gates),
            metric_names=list(GRID_METRICS),
            gates_source=gates.source,
        )

    def training(self) -> list[ReviewerOutcomes]:
        runs = training_runs(self.console.console_runs_dir)
        by_reviewer: dict[str, list[TrainingRunView]] = {}
        for run in runs:
            by_reviewer.setdefault(run.reviewer, []).append(run)
        history = self.scores.history()
        if history is not None:
            for promotion in history.promotions():
                by_reviewer.setdefault(promotion.reviewer, [])
        return [self.scores.outcomes(name, by_reviewer[name]) for name in sorted(by_reviewer)]

    def roles(self) -> RoleMap:
        return summarize_roles(role_map(self.settings, self.console), self.settings)
