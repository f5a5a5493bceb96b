"""Curated examples → per-reviewer train.jsonl / eval.jsonl, with validation, dedup, leakage check and report.

`calora data build --examples datasets/ --out build/data/`:

1. every example file is loaded and validated (`training.examples`); all errors are collected and
   reported as `file: field: message`, and nothing is written while any remain;
2. exact duplicate diffs and near duplicates (same verdict, ≥ 90 % of changed lines shared) are removed;
3. each example goes to eval when a stable hash of its root id (its own, or the one it was derived
   from, so a derived twin never lands across the split from its source) falls under the eval fraction;
4. leakage check: an eval example sharing a hunk with any train example moves to train;
5. the chat messages come from `reviewers.prompt.render_training_messages`, the renderer inference
   uses, so training and serving see the same prompt;
6. a balance report (verdicts, severities, categories, tags, token lengths) is printed and written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from reviewers.contract import render_answer
from reviewers.prompt import render_ids, render_messages, render_training_messages
from reviewers.routing import route_file
from reviewers.slicing import approx_token_count
from reviewers.unified_diff import ParsedDiff
from training.examples import CuratedExample, ExampleError, example_id, load_example, parse_example_diff

log = logging.getLogger(__name__)

EXAMPLE_SUFFIXES = (".yaml", ".yml", ".json")
UNREVIEWED_TAG = "review-before-use"  # set by `calora data augment` on clean twins; a person removes it
NEAR_DUPLICATE_JACCARD = 0.9
DEFAULT_EVAL_FRACTION = 0.15  # `data build --eval-fraction` and `data augment --eval-fraction` both start here
MIN_HELD_OUT = 30  # roots held out per reviewer at least (issue #14: a per-reviewer gate needs ~30 cases)


class DatasetError(ValueError):
    """The dataset does not validate; `errors` holds every `file: field: message` found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} example(s) failed validation:\n" + "\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class LoadedExample:
    id: str
    path: Path
    example: CuratedExample

    @property
    def root_id(self) -> str:
        return self.example.derived_from or self.id

    @cached_property
    def diff(self) -> ParsedDiff:
        """The example's diff, parsed once for dedup, leakage and routing (validation already read it)."""
        return parse_example_diff(self.example.diff)


# --- loading and validation ------------------------------------------------------------------------

def example_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in EXAMPLE_SUFFIXES)


def load_all(roots: list[Path]) -> tuple[list[LoadedExample], list[str]]:
    """Every valid example under `roots` and every error message (one per bad file)."""
    loaded: list[LoadedExample] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            errors.append(f"{root}: not a folder of examples")
            continue
        for path in example_files(root):
            try:
                example = load_example(path)
            except ExampleError as exc:
                errors.append(str(exc))
                continue
            if path.parent.name != example.reviewer:
                errors.append(f"{path}: reviewer: {example.reviewer!r} but the file is in the folder of "
                              f"{path.parent.name!r}; move it to datasets/{example.reviewer}/")
                continue
            eid = example_id(path)
            if eid in seen:
                errors.append(f"{path}: id: {eid!r} is also {seen[eid]}; example ids must be unique")
                continue
            seen[eid] = path
            loaded.append(LoadedExample(eid, path, example))
    ids = {ex.id for ex in loaded}
    for ex in loaded:
        if ex.example.derived_from and ex.example.derived_from not in ids:
            errors.append(f"{ex.path}: derived_from: {ex.example.derived_from!r} is not an example id "
                          "(ids look like '<reviewer>/<file stem>')")
    return loaded, errors


def routing_warnings(examples: list[LoadedExample]) -> list[str]:
    """Examples whose diff holds no file that routing would send to their reviewer (suspicious data)."""
    warnings = []
    for ex in examples:
        paths = ex.diff.paths()
        if not any(ex.example.reviewer in route_file(p).reviewers for p in paths):
            warnings.append(f"{ex.path}: diff: no file ({', '.join(paths)}) routes to {ex.example.reviewer}")
    return warnings


# --- dedup, split, leakage -------------------------------------------------------------------------

_WS = re.compile(r"\s+")


def _normalized(mark: str, text: str) -> str:
    return mark + _WS.sub(" ", text).strip()


def changed_lines(diff: ParsedDiff) -> list[str]:
    """Added and removed lines, whitespace-normalized: what makes two diffs the same change."""
    return [_normalized(mark, text) for f in diff.files for h in f.hunks for mark, text in h.changed_lines()]


def hunk_keys(diff: ParsedDiff) -> set[str]:
    """A hash per hunk of changed lines (path-independent): the unit of leakage between splits."""
    keys = set()
    for f in diff.files:
        for hunk in f.hunks:
            body = "\n".join(_normalized(mark, text) for mark, text in hunk.changed_lines())
            if body:
                keys.add(hashlib.sha256(body.encode()).hexdigest())
    return keys


def change_digest(diff: ParsedDiff) -> str:
    """One hash of all changed lines: two examples with the same digest are exact duplicates."""
    return hashlib.sha256("\n".join(changed_lines(diff)).encode()).hexdigest()


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def remove_duplicates(examples: list[LoadedExample]) -> tuple[list[LoadedExample], list[dict[str, str]]]:
    """Drop exact duplicate diffs, and near duplicates with the same verdict (curated before derived,
    then first by id wins: a derived copy never pushes out a hand-written example).

    A near duplicate with a different verdict is kept: a clean twin of a defective example is exactly
    the contrast a reviewer must learn. So is one derived from the other (`calora data augment`
    moves a defect or renames identifiers on purpose; both stay on the same side of the split).
    """
    kept: list[LoadedExample] = []
    removed: list[dict[str, str]] = []
    exact: dict[str, str] = {}
    sets: list[tuple[LoadedExample, set[str]]] = []
    for ex in sorted(examples, key=lambda e: (e.example.derived_from is not None, e.id)):
        lines = changed_lines(ex.diff)
        digest = change_digest(ex.diff)
        if digest in exact:
            removed.append({"id": ex.id, "duplicate_of": exact[digest], "reason": "exact duplicate diff"})
            continue
        line_set = set(lines)
        twin = next((other for other, s in sets
                     if other.example.reviewer == ex.example.reviewer
                     and other.root_id != ex.root_id  # a derivation is a deliberate near-copy
                     and other.example.expected.verdict == ex.example.expected.verdict
                     and jaccard(s, line_set) >= NEAR_DUPLICATE_JACCARD), None)
        if twin is not None:
            removed.append({"id": ex.id, "duplicate_of": twin.id,
                            "reason": f"near duplicate (≥{NEAR_DUPLICATE_JACCARD:.0%} changed lines shared, same verdict)"})
            continue
        exact[digest] = ex.id
        sets.append((ex, line_set))
        kept.append(ex)
    return kept, removed


def stable_fraction(key: str) -> float:
    """A number in [0, 1) from sha256(key): the same on every machine and Python version."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16**12


def held_out_roots(
    root_ids: Iterable[str], eval_fraction: float = DEFAULT_EVAL_FRACTION, minimum: int = MIN_HELD_OUT,
) -> frozenset[str]:
    """The roots of one reviewer whose examples are held out: the split rule of `data build`, which
    `data augment` also applies so that nothing is ever derived from a held-out example.

    Every root whose `stable_fraction` is below `eval_fraction`; a reviewer with at least twice `minimum`
    roots is topped up in `stable_fraction` order to `minimum` (a hash threshold alone gave 10 of 150 vue
    examples). A root keeps its side as examples are added unless it sits at the top-up's edge.
    """
    ranked = sorted((stable_fraction(root), root) for root in set(root_ids))
    below = sum(1 for fraction, _ in ranked if fraction < eval_fraction)
    keep = max(below, minimum if len(ranked) >= 2 * minimum else 0)
    return frozenset(root for _, root in ranked[:keep])


def split(examples: list[LoadedExample], eval_fraction: float) -> tuple[list[LoadedExample], list[LoadedExample]]:
    held = held_out_roots((ex.root_id for ex in examples), eval_fraction)
    train, evaluation = [], []
    for ex in examples:
        (evaluation if ex.root_id in held else train).append(ex)
    return train, evaluation


def fix_leakage(
    train: list[LoadedExample], evaluation: list[LoadedExample]
) -> tuple[list[LoadedExample], list[LoadedExample], list[str]]:
    """Move every eval example that shares a hunk with a train example into train; returns moved ids."""
    train_hunks = set().union(*(hunk_keys(ex.diff) for ex in train)) if train else set()
    clean, moved = [], []
    for ex in evaluation:
        if hunk_keys(ex.diff) & train_hunks:
            moved.append(ex)
        else:
            clean.append(ex)
    return train + moved, clean, [ex.id for ex in moved]


def leaked_hunks(train: list[LoadedExample], evaluation: list[LoadedExample]) -> int:
    train_hunks = set().union(*(hunk_keys(ex.diff) for ex in train)) if train else set()
    return sum(len(hunk_keys(ex.diff) & train_hunks) for ex in evaluation)


# --- rendering and report --------------------------------------------------------------------------

def chat_record(ex: LoadedExample) -> dict[str, Any]:
    """One JSONL line: chat messages (inference's renderer) plus what eval needs to grade."""
    request = ex.example.request()
    return {
        "id": ex.id,
        "reviewer": ex.example.reviewer,
        "source": str(ex.path),
        "derived_from": ex.example.derived_from,
        "tags": ex.example.tags,
        "messages": [m.model_dump() for m in render_training_messages(request, ex.example.expected)],
        "request": request.model_dump(),
        "expected": json.loads(render_answer(ex.example.expected)),
    }


TokenCounter = Callable[[CuratedExample], int]


def approx_example_tokens(example: CuratedExample) -> int:
    text = "".join(m.content for m in render_messages(example.request())) + render_answer(example.expected)
    return approx_token_count(text)


def tokenizer_counter(tokenizer: Any) -> TokenCounter:
    def count(example: CuratedExample) -> int:
        msgs = render_training_messages(example.request(), example.expected)
        return len(render_ids(tokenizer, msgs, add_generation_prompt=False))

    return count


def _length_stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "max": ordered[-1],
            "total": sum(ordered)}


def balance(examples: list[LoadedExample], count_tokens: TokenCounter) -> dict[str, Any]:
    verdicts: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for ex in examples:
        verdicts[ex.example.expected.verdict.value] += 1
        for f in ex.example.expected.findings:
            severities[f.severity.value] += 1
            categories[f.category.value] += 1
        tags.update(ex.example.tags)
    return {
        "examples": len(examples),
        "derived": sum(1 for ex in examples if ex.example.derived_from),
        "verdicts": dict(sorted(verdicts.items())),
        "severities": dict(sorted(severities.items())),
        "categories": dict(sorted(categories.items())),
        "tags": dict(sorted(tags.items())),
        "tokens": _length_stats([count_tokens(ex.example) for ex in examples]),
    }


@dataclass
class BuildReport:
    """What `data build` did, per reviewer; written as report.json next to the JSONL files."""

    tokenizer: str
    eval_fraction: float
    reviewers: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates_removed: list[dict[str, str]] = field(default_factory=list)
    skipped_unreviewed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "eval_fraction": self.eval_fraction, "reviewers": self.reviewers,
                "duplicates_removed": self.duplicates_removed, "skipped_unreviewed": self.skipped_unreviewed,
                "warnings": self.warnings}


def build_dataset(
    roots: list[Path], out: Path, eval_fraction: float = DEFAULT_EVAL_FRACTION, count_tokens: TokenCounter | None = None,
    tokenizer_name: str = "approx (3.5 chars/token)", allow_unreviewed: bool = False,
) -> BuildReport:
    """Validate, dedup, split and render every example under `roots` into `out/<reviewer>/`.

    Examples tagged `review-before-use` (machine-made clean twins) are left out unless
    `allow_unreviewed`: a wrong "approve" label teaches a reviewer to wave defects through.
    """
    examples, errors = load_all(roots)
    if errors:
        raise DatasetError(errors)
    if not examples:
        raise DatasetError([f"{', '.join(map(str, roots))}: no example files (*.yaml, *.yml, *.json)"])
    counter = count_tokens or approx_example_tokens
    report = BuildReport(tokenizer=tokenizer_name, eval_fraction=eval_fraction,
                         warnings=routing_warnings(examples))
    if not allow_unreviewed:
        report.skipped_unreviewed = [ex.id for ex in examples if UNREVIEWED_TAG in ex.example.tags]
        examples = [ex for ex in examples if UNREVIEWED_TAG not in ex.example.tags]
    kept, report.duplicates_removed = remove_duplicates(examples)
    for reviewer in sorted({ex.example.reviewer for ex in kept}):
        mine = [ex for ex in kept if ex.example.reviewer == reviewer]
        train, evaluation = split(mine, eval_fraction)
        train, evaluation, moved = fix_leakage(train, evaluation)
        if leaked_hunks(train, evaluation):
            raise AssertionError(f"{reviewer}: eval still shares hunks with train after the leakage fix")
        folder = out / reviewer
        folder.mkdir(parents=True, exist_ok=True)
        for name, part in (("train", train), ("eval", evaluation)):
            rows = [json.dumps(chat_record(ex), ensure_ascii=False) for ex in sorted(part, key=lambda e: e.id)]
            (folder / f"{name}.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        report.reviewers[reviewer] = {
            "examples": len(mine), "train": len(train), "eval": len(evaluation),
            "moved_to_train_for_leakage": moved,
            "train_balance": balance(train, counter), "eval_balance": balance(evaluation, counter),
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return report


def format_report(report: BuildReport) -> str:
    """A compact table for the terminal."""
    header = (f"{'reviewer':<14}{'total':>6}{'train':>6}{'eval':>5}  verdicts (a/r/b)  severities (b/M/m/n)  "
              f"tokens median/max  [{report.tokenizer}]")
    lines = [header]
    for name, r in report.reviewers.items():
        both = Counter(r["train_balance"]["verdicts"]) + Counter(r["eval_balance"]["verdicts"])
        sev = Counter(r["train_balance"]["severities"]) + Counter(r["eval_balance"]["severities"])
        tok = r["train_balance"]["tokens"]
        lines.append(
            f"{name:<14}{r['examples']:>6}{r['train']:>6}{r['eval']:>5}  "
            f"{both['approve']:>3}/{both['revise']:>3}/{both['block']:>3}       "
            f"{sev['blocker']:>3}/{sev['major']:>3}/{sev['minor']:>3}/{sev['nit']:>3}        "
            f"{tok.get('median', 0):>6.0f}/{tok.get('max', 0):>6}"
        )
    if report.duplicates_removed:
        shown = report.duplicates_removed[:10]
        more = len(report.duplicates_removed) - len(shown)
        lines.append(f"removed {len(report.duplicates_removed)} duplicate(s): "
                     + ", ".join(f"{d['id']} (= {d['duplicate_of']})" for d in shown)
                     + (f" and {more} more (see report.json)" if more else ""))
    if report.skipped_unreviewed:
        lines.append(f"left out {len(report.skipped_unreviewed)} example(s) tagged '{UNREVIEWED_TAG}' "
                     "(check each, remove the tag, or pass --allow-unreviewed)")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
