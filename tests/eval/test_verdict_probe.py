"""The verdict probe reads the probabilities greedy decoding hides, at the right token, for the right branch."""

from __future__ import annotations

import pytest

from eval.verdict_probe import (
    CaseProbe,
    ProbeError,
    auc,
    branch_point,
    char_level_tokenizer,
    probe_record,
    summarize,
)
from reviewers.contract import Finding, ReviewerOutput, ReviewRequest
from reviewers.prompt import render_ids, render_training_messages
from training.tiny import tiny_gemma3, tiny_gemma_tokenizer


def test_branch_point_is_the_first_differing_token_and_refuses_shared_first_tokens() -> None:
    assert branch_point([[1, 2, 3, 4], [1, 2, 5], [1, 2, 6, 7]]) == (2, [3, 5, 6])
    with pytest.raises(ProbeError, match="share a token"):
        branch_point([[1, 2], [1, 3], [1, 3, 4]])
    with pytest.raises(ProbeError, match="do not differ"):
        branch_point([[1, 2], [1, 2, 3]])


def test_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auc([0.5, 0.5], [True, False]) == 0.5
    assert auc([0.3, 0.4], [True, True]) is None


def _probe(case: str, verdict: str, probs: tuple[float, float, float], finding: float) -> CaseProbe:
    return CaseProbe(case_id=case, expected_verdict=verdict, expects_findings=verdict != "approve",
                     verdict_probs=dict(zip(("approve", "revise", "block"), probs)),
                     finding_probs={"none": 1 - finding, "finding": finding}, verdict_nll=0.0)


def test_a_model_that_always_prefers_approve_can_still_rank_the_cases() -> None:
    probes = [_probe("a", "approve", (0.9, 0.05, 0.05), 0.2), _probe("b", "block", (0.6, 0.1, 0.3), 0.7),
              _probe("r", "revise", (0.7, 0.2, 0.1), 0.6)]
    summary = summarize(probes)
    assert summary["auc_not_approve"] == 1.0 and summary["auc_finding"] == 1.0
    assert summary["auc_block_vs_revise"] == 1.0
    assert summary["by_expected_verdict"]["approve"]["p_approve"] == pytest.approx(0.9)


def _record(verdict: str) -> dict:
    request = ReviewRequest(reviewer="python", task="Add f", diff="diff --git a/x.py b/x.py\n+def f():\n+    return 1\n")
    findings = [] if verdict == "approve" else [Finding(path="x.py", line=2, severity="major", category="correctness",
                                                        message="f returns a constant")]
    answer = ReviewerOutput(verdict=verdict, findings=findings, missing_checks=[], suggested_fix="")
    return {"id": f"python/{verdict}", "messages": [m.model_dump() for m in render_training_messages(request, answer)],
            "expected": answer.model_dump(mode="json")}


@pytest.mark.parametrize("char_level", [False, True])
def test_probe_reads_the_same_probabilities_as_a_full_forward_pass(char_level: bool) -> None:
    import torch

    tokenizer = tiny_gemma_tokenizer()
    model = tiny_gemma3(len(tokenizer)).eval()
    if char_level:
        tokenizer = char_level_tokenizer(tokenizer)
    record = _record("block")
    probe = probe_record(model, tokenizer, record)
    messages = record["messages"]
    prompt_len = len(render_ids(tokenizer, messages[:-1], add_generation_prompt=True))
    full = render_ids(tokenizer, messages, add_generation_prompt=False)
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=torch.tensor([full])).logits[0].float(), dim=-1)
    # the verdict's first token follows the generation prompt and the answer's `{"verdict":"`
    verdict_at = prompt_len + len(tokenizer('{"verdict":"', add_special_tokens=False)["input_ids"])
    assert tokenizer.decode(full[verdict_at:]).startswith("b")
    assert probe.verdict_probs["block"] == pytest.approx(probs[verdict_at - 1, full[verdict_at]].item(), rel=1e-4)
    assert probe.expects_findings and probe.expected_verdict == "block"
    assert 0 < probe.finding_probs["finding"] < 1
