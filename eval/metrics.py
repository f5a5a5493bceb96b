"""Scoring reviewer answers against eval cases: pure functions, no model, no I/O.

Definitions (each metric is per reviewer, per checkpoint, per decoding mode):

- **validity**: the answer parses and validates strictly as `ReviewerOutput`. With decoding "raw" it is
  the raw contract validity; with "constrained" (schema-constrained decoding) the constrained validity.
- **verdict accuracy**: answer verdict == expected verdict, over all cases (an invalid answer is wrong).
- **block recall**: of the cases whose expected verdict is block, the share answered block.
- **false-block rate**: of the approve cases (clean changes), the share answered block.
- **finding recall**: of all must_find, the share hit. A must_find is hit by a finding on the same path
  whose line range overlaps [first - 2, last + 2] and whose category matches or whose message contains
  one of the keywords (case-insensitive); a must_find with neither category nor keywords is hit by
  location alone.
- **noise**: a finding on a `must_not_find_paths` file, or any finding on an approve case.
- **pass**: valid, verdict right, every must_find hit, no noise. Reported as "passed/cases".
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from eval.cases import EvalCase, MustFind
from eval.results import CaseResult, CaseScore, Decoding, ReviewerMetrics
from reviewers.contract import Finding, Verdict

LINE_TOLERANCE = 2


def normalize_path(path: str) -> str:
    """Paths compare without a leading './' or the diff's 'a/' / 'b/' prefixes."""
    path = path.strip()
    for prefix in ("./", "a/", "b/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def lines_overlap(finding: Finding, must: MustFind, tolerance: int = LINE_TOLERANCE) -> bool:
    """The finding's [line, last_line] meets the must_find's [first - tolerance, last + tolerance]."""
    first, last = must.lines
    return finding.line <= last + tolerance and finding.last_line >= first - tolerance


def kind_matches(finding: Finding, must: MustFind) -> bool:
    """Same category, or a keyword inside the message; a must_find naming neither matches any finding."""
    if must.category is None and not must.keywords:
        return True
    if must.category is not None and finding.category == must.category:
        return True
    message = finding.message.lower()
    return any(keyword.lower() in message for keyword in must.keywords if keyword.strip())


def finding_hits(finding: Finding, must: MustFind) -> bool:
    return (normalize_path(finding.path) == normalize_path(must.path)
            and lines_overlap(finding, must) and kind_matches(finding, must))


def is_noise(finding: Finding, case: EvalCase) -> bool:
    if case.verdict == Verdict.approve:
        return True
    forbidden = {normalize_path(p) for p in case.must_not_find_paths}
    return normalize_path(finding.path) in forbidden


def score_case(case: EvalCase, result: CaseResult) -> CaseScore:
    """Grade one answer; an invalid answer has no verdict, hits nothing and makes no noise."""
    if result.case_id != case.id:
        raise ValueError(f"result for {result.case_id!r} graded against case {case.id!r}")
    findings = result.output.findings if result.output is not None else []
    hits = [any(finding_hits(f, must) for f in findings) for must in case.must_find]
    noise = sum(1 for f in findings if is_noise(f, case))
    verdict = result.output.verdict if result.output is not None else None
    passed = result.valid and verdict == case.verdict and all(hits) and noise == 0
    return CaseScore(
        case_id=case.id, reviewer=case.reviewer, valid=result.valid, expected_verdict=case.verdict,
        verdict=verdict, must_find_hit=hits, noise_findings=noise, passed=passed, latency_s=result.latency_s,
        prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens, truncated=result.truncated,
        error=result.error,
    )


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); small samples make interpolation pretend to precision."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least 1
    return ordered[int(rank) - 1]


def summarize(reviewer: str, scores: Iterable[CaseScore], decoding: Decoding = "raw") -> ReviewerMetrics:
    """The reviewer's metrics over its graded cases; raises ValueError when there are none."""
    mine = [s for s in scores if s.reviewer == reviewer]
    if not mine:
        raise ValueError(f"no graded cases for reviewer {reviewer!r}")
    n = len(mine)
    blocks = [s for s in mine if s.expected_verdict == Verdict.block]
    approves = [s for s in mine if s.expected_verdict == Verdict.approve]
    hits = [h for s in mine for h in s.must_find_hit]
    latencies = [s.latency_s for s in mine]
    prompt = [s.prompt_tokens for s in mine if s.prompt_tokens is not None]
    completion = [s.completion_tokens for s in mine if s.completion_tokens is not None]
    timed_latency = sum(s.latency_s for s in mine if s.completion_tokens is not None)
    passed = sum(s.passed for s in mine)
    return ReviewerMetrics(
        reviewer=reviewer, decoding=decoding, cases=n, passed=passed,
        validity=sum(s.valid for s in mine) / n,
        verdict_accuracy=sum(s.verdict_correct for s in mine) / n,
        block_recall=_share(sum(s.verdict == Verdict.block for s in blocks), len(blocks)),
        false_block_rate=_share(sum(s.verdict == Verdict.block for s in approves), len(approves)),
        finding_recall=_share(sum(hits), len(hits)),
        noise_rate=sum(s.noise_findings > 0 for s in mine) / n,
        noise_findings=sum(s.noise_findings for s in mine),
        pass_rate=passed / n,
        truncation_rate=sum(s.truncated for s in mine) / n,
        latency_mean_s=statistics.fmean(latencies),
        latency_p50_s=_percentile(latencies, 0.5),
        latency_p95_s=_percentile(latencies, 0.95),
        prompt_tokens_mean=statistics.fmean(prompt) if prompt else None,
        completion_tokens_mean=statistics.fmean(completion) if completion else None,
        completion_tokens_per_s=sum(completion) / timed_latency if completion and timed_latency > 0 else None,
    )


def summarize_all(scores: list[CaseScore], decoding: Decoding = "raw") -> dict[str, ReviewerMetrics]:
    """Metrics per reviewer, reviewers in name order."""
    return {r: summarize(r, scores, decoding) for r in sorted({s.reviewer for s in scores})}


# Metrics a gate may name, and which way is better. "raw_validity" and "constrained_validity" are the
# validity of the raw and the constrained run; every other metric comes from the raw run when there is one.
HIGHER_IS_BETTER: dict[str, bool] = {
    "raw_validity": True,
    "constrained_validity": True,
    "verdict_accuracy": True,
    "block_recall": True,
    "false_block_rate": False,
    "finding_recall": True,
    "noise_rate": False,
    "pass_rate": True,
    "latency_p50_s": False,
    "latency_p95_s": False,
    "completion_tokens_mean": False,
}


def metric_values(by_decoding: dict[str, ReviewerMetrics]) -> dict[str, float | None]:
    """The flat metric table of one reviewer from its raw and/or constrained metrics (see HIGHER_IS_BETTER)."""
    if not by_decoding:
        raise ValueError("no metrics to flatten")
    main = by_decoding.get("raw") or by_decoding["constrained"]
    values: dict[str, float | None] = {
        "raw_validity": by_decoding["raw"].validity if "raw" in by_decoding else None,
        "constrained_validity": by_decoding["constrained"].validity if "constrained" in by_decoding else None,
    }
    for name in HIGHER_IS_BETTER:
        if name not in values:
            values[name] = getattr(main, name)
    return values
