"""run_pipeline: the one place that wires slicing, checks, reviewers and synthesis together."""

from __future__ import annotations

from reviewers.backends.base import Backend, BackendAnswers, CodeEgress, ReviewerFailure
from reviewers.contract import Finding, ReviewerOutput, ReviewRequest
from reviewers.pipeline import run_pipeline
from tests.conftest import REPO_ROOT

SAMPLE = (REPO_ROOT / "samples" / "storefront.diff").read_bytes()


class CloudLikeBackend(Backend):
    """Scripted stand-in for a backend that sent the sql slices to a cloud reviewer (not a model test)."""

    name = "scripted-cloud"

    def answer(self, requests: list[ReviewRequest]) -> BackendAnswers:
        answers = [
            ReviewerOutput(verdict="approve", findings=[], missing_checks=[], suggested_fix="")
            if r.reviewer == "sql" else ReviewerFailure(reviewer=r.reviewer, message="offline")
            for r in requests
        ]
        sent = sum(r.reviewer == "sql" for r in requests)
        return BackendAnswers(results=answers, egress=[
            CodeEgress(reviewer="sql", endpoint="https://api.example.com", model="m", requests=sent)])

    def review(self, requests):  # pragma: no cover - the pipeline asks for answers with their egress
        raise AssertionError("the pipeline must ask for egress")


class BrokenBackend(Backend):
    name = "broken"

    def review(self, requests):
        raise ConnectionError("reviewer server unreachable")


def _first_added_line(diff: str) -> tuple[str, int]:
    """The path and new-file line number of a slice's first added line."""
    path, line = "", 0
    for text in diff.splitlines():
        if text.startswith("+++ b/"):
            path = text[6:]
        elif text.startswith("@@"):
            line = int(text.split("+", 1)[1].split(",")[0].split(" ")[0])
        elif path and line:
            if text.startswith("+"):
                return path, line
            if not text.startswith("-"):
                line += 1
    raise AssertionError("no added line")


class _FindingBackend(Backend):
    """Scripted (not a model test): every reviewer raises one finding of its own on its first added line."""

    name = "scripted-findings"

    def review(self, requests):
        answers = []
        for r in requests:
            path, line = _first_added_line(r.diff)
            finding = Finding(path=path, line=line, severity="major", category="maintainability",
                              message=f"{r.reviewer}: a finding of the reviewer's own, no analyzer's")
            answers.append(ReviewerOutput(verdict="revise", findings=[finding], missing_checks=[], suggested_fix=""))
        return answers


def test_every_slice_gets_one_outcome_in_plan_order() -> None:
    class Echo(Backend):
        name = "echo"

        def review(self, requests):
            return [ReviewerOutput(verdict="revise", findings=[Finding(
                path="app/orders.py", line=15, severity="major", category="security", message=r.reviewer)],
                missing_checks=[], suggested_fix="") for r in requests]

    run = run_pipeline(SAMPLE, Echo(), analyzers=())  # the reviewers alone decide here
    assert [(o.reviewer, o.slice_index) for o in run.outcomes] == [(s.reviewer, s.index) for s in run.plan.slices]
    assert [r.reviewer for r in run.requests] == [s.reviewer for s in run.plan.slices]
    assert run.result.verdict.value == "revise"


def test_code_that_left_the_machine_is_reported() -> None:
    run = run_pipeline(SAMPLE, CloudLikeBackend())
    assert run.left_machine and run.left_machine[0].reviewer == "sql"
    assert any("Code left this machine" in note for note in run.result.notes)


def test_nothing_leaves_the_machine_by_default() -> None:
    run = run_pipeline(SAMPLE, BrokenBackend())
    assert run.left_machine == []
    assert not any("left this machine" in note for note in run.result.notes)


def test_a_broken_backend_gives_an_incomplete_review_not_an_exception() -> None:
    run = run_pipeline(SAMPLE, BrokenBackend(), analyzers=())
    assert all(o.error and "unreachable" in o.error for o in run.outcomes)
    assert run.result.decision == "incomplete"


def test_a_broken_backend_still_blocks_on_the_analyzers_evidence() -> None:
    run = run_pipeline(SAMPLE, BrokenBackend())
    assert not run.result.complete and run.result.decision == "block"
    assert any(f.raised_by == ["checks:ruff/S608"] for f in run.result.findings)


def test_dry_run_slices_without_a_model() -> None:
    run = run_pipeline(SAMPLE, None, reviewers=("sql",))
    assert {s.reviewer for s in run.plan.slices} == {"sql"} and run.outcomes == []


def test_the_diff_is_parsed_once_for_slicing_and_the_analyzers(monkeypatch) -> None:
    import reviewers.slicing
    import reviewers.unified_diff

    real = reviewers.unified_diff.parse_unified_diff
    parses: list[int] = []

    def counting(text: str):
        parses.append(len(text))
        return real(text)

    monkeypatch.setattr(reviewers.unified_diff, "parse_unified_diff", counting)
    monkeypatch.setattr(reviewers.slicing, "parse_unified_diff", counting)
    run = run_pipeline(SAMPLE, None)  # no file contents: the analyzers read the diff's fragments
    assert run.checks is not None and run.checks.findings, "the analyzers must have judged the fragments"
    assert parses == [len(SAMPLE.decode("utf-8"))]


def test_undecodable_bytes_keep_their_note_and_byte_size_through_the_one_parse() -> None:
    section = "--- a/m{0}.py\n+++ b/m{0}.py\n@@ -1 +1 @@\n-x = 1\n+name = 'caf\xe9'\n"
    one = section.format(0).encode("latin-1")  # \xe9 alone: not UTF-8
    diff = b"".join(section.format(i).encode("latin-1") for i in range(3))
    from reviewers.slicing import SliceLimits

    bad_at = one.index(b"\xe9")
    run = run_pipeline(diff, None, analyzers=(), limits=SliceLimits(max_diff_bytes=2 * len(one) + 4))  # U+FFFD: 3 bytes
    assert any("not valid UTF-8" in note and f"offset {bad_at}" in note for note in run.plan.notes)
    over = [n for n in run.plan.not_reviewed if n.kind == "over_cap"]
    assert len(over) == 1 and f"(diff is {len(diff)} bytes)" in over[0].reason


class AdapterForSql(Backend):
    """A local backend with the sql reviewer's adapter only, the bare base model not asked (the default)."""

    name = "sql-adapter-only"
    ask_base_model = False

    def __init__(self) -> None:
        self.asked: list[str] = []

    def has_adapter(self, reviewer: str) -> bool:
        return reviewer == "sql"

    def review(self, requests):
        self.asked += [r.reviewer for r in requests]
        return [ReviewerOutput(verdict="approve", findings=[], missing_checks=[], suggested_fix="") for _ in requests]


def test_reviewers_without_an_adapter_are_not_asked_unless_the_base_model_is() -> None:
    backend = AdapterForSql()
    run = run_pipeline(SAMPLE, backend)
    others = sorted({s.reviewer for s in run.plan.slices} - {"sql"})
    assert others and backend.asked and set(backend.asked) == {"sql"}
    assert {o.reviewer for o in run.outcomes} == {"sql"} and run.result.complete
    assert run.result.decision == "block"  # the analyzers' evidence still stands for the code nobody asked about
    assert any(note.startswith(f"{', '.join(others)}: not asked") for note in run.result.notes)

    backend.asked, backend.ask_base_model = [], True  # CALORA_ASK_BASE_MODEL=true
    run = run_pipeline(SAMPLE, backend)
    assert sorted(set(backend.asked)) == sorted({s.reviewer for s in run.plan.slices})
    assert not any("not asked" in note for note in run.result.notes)


def test_only_a_remote_model_is_asked_without_an_adapter_by_default() -> None:
    from reviewers.backends.factory import BackendSettings, asks_base_model

    assert asks_base_model(BackendSettings(backend="engine")) is False
    assert asks_base_model(BackendSettings(backend="transformers")) is False
    assert asks_base_model(BackendSettings(backend="openai")) is True
    assert asks_base_model(BackendSettings(backend="engine", ask_base_model=True)) is True
    assert asks_base_model(BackendSettings(backend="openai", ask_base_model=False)) is False


def test_only_a_remote_model_posts_findings_no_analyzer_confirms_by_default(monkeypatch) -> None:
    from reviewers.backends.factory import BackendSettings, posts_findings_alone

    assert posts_findings_alone(BackendSettings(backend="engine")) is False
    assert posts_findings_alone(BackendSettings(backend="transformers")) is False
    assert posts_findings_alone(BackendSettings(backend="openai")) is True
    assert posts_findings_alone(BackendSettings(backend="engine", reviewer_findings="all")) is True
    monkeypatch.setenv("CALORA_REVIEWER_FINDINGS", "confirmed")
    assert posts_findings_alone(BackendSettings(backend="openai")) is False


def test_the_pipeline_hands_the_backends_setting_to_synthesis() -> None:
    """A backend whose findings may not stand alone gets none posted that no analyzer confirms."""
    backend = _FindingBackend()
    backend.findings_alone = False
    run = run_pipeline(SAMPLE, backend)
    alone = [f for f in run.result.findings + run.result.nits if not any(n.startswith("checks") for n in f.raised_by)]
    assert not alone
    assert any("no analyzer confirms were not posted" in note for note in run.result.notes)
    backend.findings_alone = True
    run = run_pipeline(SAMPLE, backend)
    assert any(not any(n.startswith("checks") for n in f.raised_by) for f in run.result.findings + run.result.nits)


def test_no_model_is_loaded_when_no_reviewer_would_be_asked(tmp_path) -> None:
    from reviewers.backends.factory import BackendSettings, asks_any_model

    assert not asks_any_model(BackendSettings(backend="engine", adapters_dir=tmp_path))
    assert asks_any_model(BackendSettings(backend="engine", adapters_dir=tmp_path, ask_base_model=True))
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "adapter_config.json").write_text("{}")
    assert asks_any_model(BackendSettings(backend="engine", adapters_dir=tmp_path))


CLEAN_COMPONENT = b"""diff --git a/src/components/Badge.tsx b/src/components/Badge.tsx
new file mode 100644
--- /dev/null
+++ b/src/components/Badge.tsx
@@ -0,0 +1,5 @@
+type BadgeProps = { label: string };
+
+export function Badge({ label }: BadgeProps) {
+  return <span className="badge">{label}</span>;
+}
"""


class _RecordingBackend(_FindingBackend):
    """Scripted (not a model test): records which reviewers it was asked, raises a blocker on each slice."""

    name = "scripted-recording"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def review(self, requests):
        self.asked.extend(r.reviewer for r in requests)
        answers = super().review(requests)
        for answer in answers:
            answer.findings[0].severity = "blocker"
        return answers


def test_with_confirmed_findings_a_slice_with_nothing_to_confirm_is_not_asked_and_the_review_is_the_same(
    monkeypatch,
) -> None:
    """Where a reviewer's finding is posted only if an analyzer's confirms it, a slice whose files carry no
    analyzer finding above a nit cannot change the review: it is not sent to the model."""
    from reviewers import pipeline

    diff = SAMPLE + CLEAN_COMPONENT
    backend = _RecordingBackend()
    backend.findings_alone = False
    run = run_pipeline(diff, backend)
    reviewers = [s.reviewer for s in run.plan.slices]
    assert "react" in reviewers and not any(f.path.endswith("Badge.tsx") for f in run.check_findings)
    assert sorted(backend.asked) == sorted(r for r in reviewers if r != "react")
    assert any("1 of 4 slice(s) not sent to a reviewer" in note for note in run.result.notes)

    monkeypatch.setattr(pipeline, "can_confirm", lambda paths, findings: True)  # every slice asked
    every = _RecordingBackend()
    every.findings_alone = False
    asked_all = run_pipeline(diff, every)
    assert sorted(every.asked) == sorted(reviewers)
    assert asked_all.result.decision == run.result.decision == "block"
    assert asked_all.result.findings == run.result.findings and asked_all.result.nits == run.result.nits

    backend = _RecordingBackend()  # findings that stand alone: every slice is asked
    run_pipeline(diff, backend)
    assert sorted(backend.asked) == sorted(reviewers)
