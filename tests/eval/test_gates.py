"""The promotion decision: passing, failing and tie cases; gates files with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.gates import DEFAULT_GATES, Candidate, Gates, GatesError, Threshold, decide, load_gates

GATES = Gates(
    defaults={"raw_validity": Threshold(min=0.9), "verdict_accuracy": Threshold(min=0.7),
              "false_block_rate": Threshold(max=0.2), "block_recall": Threshold(min=0.8)},
    reviewers={"sql": {"block_recall": Threshold(min=0.95)}, "docker_ci": {"false_block_rate": None}},
    rank_by=["pass_rate", "verdict_accuracy"],
)


def cand(name: str, step: int, **metrics: float | None) -> Candidate:
    base = {"raw_validity": 1.0, "verdict_accuracy": 0.8, "false_block_rate": 0.0, "block_recall": 1.0,
            "pass_rate": 0.5}
    return Candidate(checkpoint=name, step=step, adapter=f"/runs/x/{name}", metrics={**base, **metrics})


def test_the_best_passing_checkpoint_is_promoted() -> None:
    decision = decide("python", [cand("step-10", 10, pass_rate=0.4), cand("step-20", 20, pass_rate=0.7),
                                 cand("step-30", 30, pass_rate=0.6)], GATES)
    assert decision.promoted and decision.chosen.checkpoint == "step-20"


def test_a_better_scoring_checkpoint_that_fails_a_gate_is_not_promoted() -> None:
    decision = decide("python", [cand("step-10", 10, pass_rate=0.5),
                                 cand("step-20", 20, pass_rate=0.9, false_block_rate=0.5)], GATES)
    assert decision.chosen.checkpoint == "step-10"
    failing = decision.results[1].failures
    assert [c.metric for c in failing] == ["false_block_rate"]


def test_ties_go_to_the_earlier_checkpoint() -> None:
    decision = decide("python", [cand("step-30", 30), cand("step-10", 10), cand("step-20", 20)], GATES)
    assert decision.chosen.checkpoint == "step-10"


def test_a_tie_on_the_first_rank_metric_is_broken_by_the_next() -> None:
    decision = decide("python", [cand("step-10", 10, verdict_accuracy=0.75),
                                 cand("step-20", 20, verdict_accuracy=0.9)], GATES)
    assert decision.chosen.checkpoint == "step-20"


def test_nothing_passing_refuses_and_lists_every_failing_metric() -> None:
    decision = decide("python", [cand("step-10", 10, raw_validity=0.2, verdict_accuracy=0.3),
                                 cand("step-20", 20, block_recall=0.5)], GATES)
    assert not decision.promoted
    text = decision.explain()
    assert "refused" in text
    assert "step-10: raw_validity 0.2 (needs >= 0.9); verdict_accuracy 0.3 (needs >= 0.7)" in text
    assert "step-20: block_recall 0.5 (needs >= 0.8)" in text


def test_an_unmeasured_metric_fails_a_required_gate_and_passes_an_optional_one() -> None:
    gates = Gates(defaults={"block_recall": Threshold(min=0.8),
                            "constrained_validity": Threshold(min=1.0, required=False)})
    refused = decide("python", [cand("step-10", 10, block_recall=None)], gates)
    assert "block_recall not measured" in refused.explain()
    promoted = decide("python", [cand("step-10", 10, constrained_validity=None)], gates)
    assert promoted.promoted


def test_per_reviewer_overrides_tighten_and_remove_default_gates() -> None:
    sql = decide("sql", [cand("step-10", 10, block_recall=0.9)], GATES)
    assert not sql.promoted  # sql needs 0.95
    docker = decide("docker_ci", [cand("step-10", 10, false_block_rate=0.9)], GATES)
    assert docker.promoted  # docker_ci has no false-block gate


def test_no_candidates_refuses() -> None:
    assert not decide("python", [], GATES).promoted


def test_the_committed_gates_file_loads() -> None:
    gates = load_gates(DEFAULT_GATES)
    assert gates.thresholds_for("sql")["block_recall"].min == 0.9
    assert "raw_validity" in gates.thresholds_for("python")


def test_a_misspelled_metric_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "gates.yml"
    bad.write_text("defaults:\n  verdict_acuracy: {min: 0.5}\n", encoding="utf-8")
    with pytest.raises(GatesError, match=r"gates.yml: .*unknown metric\(s\) verdict_acuracy"):
        load_gates(bad)


def test_a_threshold_without_bounds_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "gates.yml"
    bad.write_text("defaults:\n  pass_rate: {required: true}\n", encoding="utf-8")
    with pytest.raises(GatesError, match="defaults.pass_rate: .*min or max"):
        load_gates(bad)
