"""Running a model over eval cases: answer each case, time it, grade it, summarize per reviewer.

The loop is the only I/O-shaped part (it calls the model); grading is `eval.metrics`, pure.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

from eval.cases import EvalCase
from eval.generation import ReviewModel, UnsupportedDecodingError
from eval.metrics import score_case, summarize_all
from eval.results import CaseResult, Decoding, EvalRunResult, RunInfo

log = logging.getLogger(__name__)


def answer_cases(model: ReviewModel, cases: list[EvalCase], decoding: Decoding = "raw",
                 progress: bool = True, desc: str = "eval", batch_size: int = 1) -> list[CaseResult]:
    """One `CaseResult` per case, in order. A model error on a case is recorded as an invalid answer.

    With `batch_size` > 1 (models with `answer_many`), cases of one reviewer are answered together and
    each case's latency is the batch's wall time.
    """
    batches = _batches(cases, batch_size if hasattr(model, "answer_many") else 1)
    by_id: dict[str, CaseResult] = {}
    bar = tqdm(total=len(cases), desc=desc, file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for batch in batches:
        try:
            if len(batch) > 1:
                answers = model.answer_many([c.request for c in batch], decoding)  # type: ignore[attr-defined]
            else:
                answers = [model.answer(batch[0].request, decoding)]
        except UnsupportedDecodingError:
            raise
        except Exception as exc:  # one failing batch must not lose the others' results
            log.exception("cases %s failed", ", ".join(c.id for c in batch))
            for case in batch:
                by_id[case.id] = CaseResult(case_id=case.id, reviewer=case.reviewer, decoding=decoding,
                                            error=f"generation failed: {exc}", latency_s=0.0)
        else:
            for case, answer in zip(batch, answers, strict=True):
                by_id[case.id] = CaseResult(
                    case_id=case.id, reviewer=case.reviewer, decoding=decoding, raw=answer.text,
                    output=answer.output, error=answer.error, latency_s=answer.latency_s,
                    prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                    truncated=answer.truncated,
                )
        bar.update(len(batch))
        bar.set_postfix(valid=sum(r.valid for r in by_id.values()))
    bar.close()
    return [by_id[c.id] for c in cases]


def _batches(cases: list[EvalCase], size: int) -> list[list[EvalCase]]:
    """Consecutive cases of the same reviewer, at most `size` per batch."""
    batches: list[list[EvalCase]] = []
    for case in cases:
        if batches and len(batches[-1]) < size and batches[-1][0].reviewer == case.reviewer:
            batches[-1].append(case)
        else:
            batches.append([case])
    return batches


def grade(cases: list[EvalCase], results: list[CaseResult], info: RunInfo) -> EvalRunResult:
    """Scores and per-reviewer metrics for answered cases."""
    by_id = {c.id: c for c in cases}
    scores = [score_case(by_id[r.case_id], r) for r in results]
    return EvalRunResult(info=info, results=results, scores=scores,
                         reviewers=summarize_all(scores, info.decoding))


def evaluate(model: ReviewModel, cases: list[EvalCase], info: RunInfo, progress: bool = True) -> EvalRunResult:
    """Answer and grade every case with `model`, decoding as `info.decoding` says."""
    results = answer_cases(model, cases, info.decoding, progress, desc=f"eval {info.label} ({info.decoding})",
                           batch_size=info.batch_size)
    return grade(cases, results, info)


def git_commit(repo: Path | None = None) -> str | None:
    """The checkout's commit (with '+dirty' when eval/ or datasets/ differ), for reproducibility."""
    cwd = repo or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "eval", "datasets", "reviewers"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def markdown_table(run: EvalRunResult) -> str:
    """The per-reviewer table `calora eval run` prints and writes next to the results JSON."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    header = ("| reviewer | decoding | pass | validity | verdict acc. | block recall | false-block | "
              "finding recall | noise | p50 latency | tokens out |")
    lines = [f"### {run.info.label}: {run.info.base_model}" + (f" + {run.info.adapter}" if run.info.adapter else ""),
             "", header, "|" + "---|" * 11]
    for m in run.reviewers.values():
        tokens = "n/a" if m.completion_tokens_mean is None else f"{m.completion_tokens_mean:.0f}"
        lines.append(
            f"| {m.reviewer} | {m.decoding} | {m.pass_count} | {pct(m.validity)} | {pct(m.verdict_accuracy)} | "
            f"{pct(m.block_recall)} | {pct(m.false_block_rate)} | {pct(m.finding_recall)} | "
            f"{pct(m.noise_rate)} | {m.latency_p50_s:.1f} s | {tokens} |"
        )
    return "\n".join(lines) + "\n"
