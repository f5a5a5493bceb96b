"""`calora data augment`: derive training examples from curated ones, into a separate folder.

What `data augment` writes, each example validated exactly like a hand-written one and marked `derived_from`:

- **clean twin**: a one-finding revise/block example whose finding carries a `suggestion` gets that
  suggestion applied to the diff and the expected answer becomes a clean approve. The suggestion may
  not fix everything the message says, so twins are tagged `review-before-use` until a person checks
  them (and lists the bad ones in `rejected-twins.txt`, so they are not made again).
- **combined**: two examples of one reviewer that touch different files become one multi-file PR (both
  diffs, both intents, both answers' findings, the stronger verdict). Mostly a defective example with a
  clean one: the reviewer must find the defect among clean code and stay silent on the clean file. Some
  also get the two boundary layers below, which alone would change nothing but names and positions.

Two boundary layers (never written on their own: renames alone do not make a new example):

- **renamed**: identifiers the diff defines (functions, classes, variables) get other plausible names,
  consistently across diff, task, context and expected answer.
- **moved**: blank added lines are inserted before the first finding, so the defect sits at another
  line number; every later line reference shifts.

Nothing is derived from a source whose root falls in the eval split (`dataset_build.held_out_roots`, the
rule `data build` splits by): a derivation of a held-out example would teach its answer. Derived files go
to `datasets-derived/<reviewer>/` (never into the curated folder); `calora data build --examples datasets
datasets-derived` trains on both. A combined example's root is its primary source, and both its sources
are train-split, so it lands in train with both.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from reviewers.contract import Finding, ReviewerOutput, Verdict
from reviewers.synthesis import VERDICT_RANK, strongest_verdict
from reviewers.unified_diff import Hunk, format_hunk_header, parse_unified_diff
from training.dataset_build import (
    DEFAULT_EVAL_FRACTION,
    NEAR_DUPLICATE_JACCARD,
    UNREVIEWED_TAG,
    change_digest,
    changed_lines,
    held_out_roots,
    jaccard,
)
from training.evidence import EVIDENCE_TAG
from training.examples import (
    CuratedExample,
    ExampleError,
    dump_example,
    example_id,
    load_example,
    load_examples,
    parse_example_diff,
    validate_example,
)

log = logging.getLogger(__name__)

class AugmentError(ValueError):
    """A derivation that does not apply to this example (the example is skipped for that kind)."""


# --- a small diff editor: lines with their file and new-file line number ----------------------------

@dataclass
class DiffLine:
    text: str
    kind: str  # "meta" | "hunk" | "+" | "-" | " " | "\\"
    path: str | None
    new_no: int | None
    hunk: Hunk | None = None  # for a "hunk" line: the parsed hunk it heads


def parse_lines(diff: str) -> list[DiffLine]:
    """Each line of `diff`, annotated from its one parse (`reviewers.unified_diff`): hunk headers and
    body lines with their file and new-file number; every other line is kept as "meta"."""
    parsed = parse_unified_diff(diff)
    broken = next((f for f in parsed.files if f.error is not None), None)
    if broken is not None:
        raise AugmentError(f"{broken.path}: {broken.error}")
    texts = parsed.text.split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    out = [DiffLine(text, "meta", None, None) for text in texts]
    for f in parsed.files:
        for hunk in f.hunks:
            at = hunk.diff_line - 1
            out[at] = DiffLine(texts[at], "hunk", f.path, None, hunk)
            new_no = hunk.new_start
            for k, mark in enumerate(hunk.marks, start=at + 1):
                out[k] = DiffLine(texts[k], mark, f.path, new_no if mark in " +" else None)
                new_no += mark in " +"
    return out


def render_lines(lines: list[DiffLine]) -> str:
    return "".join(line.text + "\n" for line in lines)


def _shift_hunks(lines: list[DiffLine], path: str, from_index: int, delta: int, own_hunk: int) -> None:
    """Adjust the new-side count of the edited hunk and the new-side start of later hunks of `path`."""
    for i, line in enumerate(lines):
        if line.kind != "hunk" or line.path != path or line.hunk is None:
            continue
        hunk = line.hunk
        start, length = hunk.new_start, hunk.new_len
        if i == own_hunk:
            length += delta
        elif i > from_index:
            start += delta
        else:
            continue
        line.text = format_hunk_header(hunk.old_start, hunk.old_len, start, length, hunk.section).rstrip("\n")


def _hunk_of(lines: list[DiffLine], index: int) -> int:
    return max(i for i in range(index + 1) if lines[i].kind == "hunk")


def replace_new_lines(diff: str, path: str, first: int, last: int, new_texts: list[str]) -> str:
    """Replace added lines first..last of `path` (new-file numbers) by `new_texts` as added lines."""
    lines = parse_lines(diff)
    idx = [i for i, line in enumerate(lines) if line.path == path and line.new_no is not None
           and first <= line.new_no <= last]
    if len(idx) != last - first + 1 or any(lines[i].kind != "+" for i in idx):
        raise AugmentError(f"{path}:{first}-{last} are not all added lines")
    if idx != list(range(idx[0], idx[-1] + 1)):
        raise AugmentError(f"{path}:{first}-{last} are interleaved with removed lines")
    hunk = _hunk_of(lines, idx[0])
    fresh = [DiffLine("+" + t, "+", path, None) for t in new_texts]
    lines[idx[0] : idx[-1] + 1] = fresh
    _shift_hunks(lines, path, idx[0], len(new_texts) - len(idx), hunk)
    return render_lines(lines)


def insert_blank_lines(diff: str, path: str, before: int, count: int) -> str:
    """Insert `count` blank added lines before new-file line `before` of `path`."""
    lines = parse_lines(diff)
    at = next((i for i, line in enumerate(lines) if line.path == path and line.new_no == before), None)
    if at is None:
        raise AugmentError(f"{path}:{before} is not shown in the diff")
    hunk = _hunk_of(lines, at)
    lines[at:at] = [DiffLine("+", "+", path, None) for _ in range(count)]
    _shift_hunks(lines, path, at, count, hunk)
    return render_lines(lines)


# --- derivations ------------------------------------------------------------------------------------

def _shift_finding(f: Finding, path: str, from_line: int, delta: int) -> Finding:
    if f.path != path or f.line < from_line:
        return f
    return f.model_copy(update={"line": f.line + delta,
                                "end_line": f.end_line + delta if f.end_line is not None else None})


def move_defect(example: CuratedExample, rng: random.Random) -> CuratedExample:
    """Push the first finding (and everything after it in that file) down by 2-6 blank lines."""
    if not example.expected.findings:
        raise AugmentError("no finding to move")
    first = min(example.expected.findings, key=lambda f: (f.path, f.line))
    count = rng.randint(2, 6)
    diff = insert_blank_lines(example.diff, first.path, first.line, count)
    findings = [_shift_finding(f, first.path, first.line, count) for f in example.expected.findings]
    expected = example.expected.model_copy(update={"findings": findings})
    return example.model_copy(update={"diff": diff, "expected": expected})


def clean_twin(example: CuratedExample) -> CuratedExample:
    """Apply the single finding's suggestion and expect a clean approve."""
    findings = example.expected.findings
    if example.expected.verdict == Verdict.approve or len(findings) != 1 or findings[0].suggestion is None:
        raise AugmentError("needs exactly one finding with a suggestion on a revise/block example")
    f = findings[0]
    diff = replace_new_lines(example.diff, f.path, f.line, f.last_line, f.suggestion.rstrip("\n").split("\n"))
    expected = ReviewerOutput(verdict=Verdict.approve, findings=[], missing_checks=[], suggested_fix="")
    tags = [t for t in example.tags if t not in ("block", "revise")] + ["clean", UNREVIEWED_TAG]
    return example.model_copy(update={"diff": diff, "expected": expected, "tags": tags})


_DEFINES = re.compile(
    r"^\+\s*(?:async\s+)?(?:def|class|function|const|let|var|type|interface)\s+([A-Za-z_][A-Za-z0-9_]*)"
    r"|^\+\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=(?!=)",
    re.MULTILINE,
)
# Word-part synonyms: a renamed identifier keeps its shape (snake_case, camelCase) and its meaning.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "user": ("account", "member"), "order": ("purchase", "booking"), "item": ("entry", "element"),
    "get": ("fetch", "read"), "load": ("read", "fetch"), "save": ("store", "persist"), "data": ("payload",),
    "list": ("collection",), "count": ("total", "tally"), "name": ("label", "title"), "search": ("lookup", "find"),
    "query": ("term", "filter"), "result": ("outcome",), "results": ("outcomes",), "items": ("entries",),
    "users": ("accounts", "members"), "orders": ("purchases",), "config": ("settings",), "build": ("make",),
    "create": ("make", "new"), "update": ("change", "modify"), "delete": ("remove", "drop"), "value": ("amount",),
    "total": ("sum",), "price": ("cost",), "invoice": ("bill",), "customer": ("client", "buyer"),
    "report": ("summary",), "event": ("signal",), "handler": ("callback",), "message": ("note",),
    "payment": ("charge",), "token": ("credential",), "file": ("document",), "path": ("location",),
    "process": ("handle",), "parse": ("decode",), "send": ("dispatch",), "fetch": ("retrieve", "load"),
    "cache": ("store",), "job": ("task",), "task": ("job",), "record": ("row",), "row": ("record",),
    "account": ("profile",), "product": ("article",), "cart": ("basket",), "session": ("visit",),
}
_KEEP = frozenset({"self", "cls", "this", "None", "True", "False", "null", "true", "false", "main", "init",
                   "__init__", "__name__", "__all__", "id", "i", "j", "k", "x", "y", "e", "_"})


def _split_parts(name: str) -> list[str]:
    return [p for p in re.split(r"_|(?<=[a-z0-9])(?=[A-Z])", name) if p]


def _rename(name: str, rng: random.Random) -> str | None:
    parts = _split_parts(name)
    changed = False
    out = []
    for part in parts:
        options = SYNONYMS.get(part.lower())
        if options and not changed:
            new = rng.choice(options)
            new = new.capitalize() if part[0].isupper() else new
            new = new.upper() if part.isupper() and len(part) > 1 else new
            out.append(new)
            changed = True
        else:
            out.append(part)
    if not changed:
        return None
    if "_" in name or name.isupper():
        return "_".join(out)
    return out[0] + "".join(p[:1].upper() + p[1:] for p in out[1:])


def rename_identifiers(example: CuratedExample, rng: random.Random) -> CuratedExample:
    """Rename every identifier the diff defines that has a synonym-able part, everywhere it appears."""
    defined = []
    for m in _DEFINES.finditer(example.diff):
        name = m.group(1) or m.group(2)
        if name and name not in _KEEP and len(name) >= 3 and name not in defined:
            defined.append(name)
    mapping: dict[str, str] = {}
    for name in defined:
        new = _rename(name, rng)
        if new and new != name and not re.search(rf"\b{re.escape(new)}\b", example.diff):
            mapping[name] = new
    if not mapping:
        raise AugmentError("no identifier defined in the diff has a known synonym")
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")\b")

    def sub(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(1)], text)

    def sub_diff(diff: str) -> str:  # file headers keep their paths
        return "".join(line + "\n" if line.startswith(("diff --git", "--- ", "+++ ", "@@", "index "))
                       else sub(line) + "\n" for line in diff.splitlines())

    data = example.model_dump(mode="json")
    data["diff"] = sub_diff(example.diff)
    data["task"] = sub(example.task)
    data["check_output"] = sub(example.check_output)
    for snippet in data["context"]:
        snippet["text"] = sub(snippet["text"])
    exp = data["expected"]
    exp["suggested_fix"] = sub(exp["suggested_fix"])
    exp["missing_checks"] = [sub(c) for c in exp["missing_checks"]]
    for f in exp["findings"]:
        f["message"] = sub(f["message"])
        if f.get("suggestion") is not None:
            f["suggestion"] = sub(f["suggestion"])
    return CuratedExample.model_validate(data)


KINDS = ("renamed", "moved", "clean-twin")
WRITTEN_KINDS = ("clean-twin", "combined")
"""What `data augment` writes: derivations that change the code a reviewer judges, not only its names."""
REJECTED_TWINS = "rejected-twins.txt"
"""In the derived folder: `<source id>  <why>` per line, clean twins a person rejected (never made again)."""
MAX_COMBINED_CHANGED_LINES = 120  # a combined PR stays a prompt a 270M reviewer is taught on
DEFAULT_FILL_TO = 270  # examples per reviewer (curated + derived) that combined ones fill up to


def _as_derived(new: CuratedExample, source_id: str, kinds: list[str]) -> CuratedExample:
    """Mark `new` as derived from `source_id` and validate it. The source's analyzer evidence described
    another diff, so it is dropped; `calora data evidence` writes the derived diff's own."""
    tags = [t for t in new.tags if t not in ("derived", EVIDENCE_TAG)] + ["derived", *kinds]
    new = new.model_copy(update={"derived_from": source_id, "tags": list(dict.fromkeys(tags)), "check_output": ""})
    validate_example(CuratedExample.model_validate(new.model_dump(mode="json")))
    return new


def derive(example: CuratedExample, source_id: str, kind: str, rng: random.Random) -> CuratedExample:
    """One derived example of `kind`, validated; raises `AugmentError`/`ExampleError` when it does not apply."""
    if kind == "renamed":
        new = rename_identifiers(example, rng)
    elif kind == "moved":
        new = move_defect(example, rng)
    elif kind == "clean-twin":
        new = clean_twin(example)
    else:
        raise ValueError(f"unknown derivation {kind!r}; known: {', '.join(KINDS)}")
    return _as_derived(new, source_id, [kind])


def _short_union(a: list[str], b: list[str], limit: int) -> list[str]:
    return list(dict.fromkeys(a + b))[:limit]


def combine(
    primary: CuratedExample, primary_id: str, secondary: CuratedExample, secondary_id: str, rng: random.Random
) -> CuratedExample:
    """One PR made of two examples that touch different files, validated and marked.

    `primary` (the one with the stronger verdict) is the root; the tag `combined-with:<id>` names the
    other. Refused when the files overlap, the PR would exceed `MAX_COMBINED_CHANGED_LINES`, or one
    source is so small that `data build` would call the PR a near duplicate of the other.
    """
    if primary.reviewer != secondary.reviewer:
        raise AugmentError("sources of different reviewers")
    parsed = parse_example_diff(primary.diff), parse_example_diff(secondary.diff)
    if set(parsed[0].paths()) & set(parsed[1].paths()):
        raise AugmentError("the sources change the same file")
    lines = [set(changed_lines(p)) for p in parsed]
    changed = sum(len(changed_lines(p)) for p in parsed)
    if changed > MAX_COMBINED_CHANGED_LINES:
        raise AugmentError(f"{changed} changed lines, over {MAX_COMBINED_CHANGED_LINES}")
    if any(jaccard(part, lines[0] | lines[1]) >= NEAR_DUPLICATE_JACCARD for part in lines):
        raise AugmentError("one source dominates the combined diff (a near duplicate of it)")
    first, second = (primary, secondary) if rng.random() < 0.5 else (secondary, primary)
    exp_a, exp_b = primary.expected, secondary.expected
    expected = ReviewerOutput(
        verdict=strongest_verdict((exp_a.verdict, exp_b.verdict)),
        findings=first.expected.findings + second.expected.findings,
        missing_checks=_short_union(exp_a.missing_checks, exp_b.missing_checks, limit=3),
        suggested_fix=" ".join(fix for fix in (exp_a.suggested_fix, exp_b.suggested_fix) if fix),
    )
    new = CuratedExample(
        reviewer=primary.reviewer,
        task=f"{first.task.rstrip()}\n\nAlso in this PR: {second.task.strip()}",
        diff=first.diff.rstrip("\n") + "\n" + second.diff.rstrip("\n") + "\n",
        context=first.context + second.context,
        expected=expected,
        tags=[*primary.tags, "multi-file"],
    )
    kinds = ["combined", f"combined-with:{secondary_id}"]
    if rng.random() < 0.5:  # boundary layers: names and line numbers the reviewer cannot have memorised
        try:
            new, kinds = rename_identifiers(new, rng), [*kinds, "renamed"]
        except AugmentError:
            pass
    if expected.findings and rng.random() < 0.3:
        new, kinds = move_defect(new, rng), [*kinds, "moved"]
    return _as_derived(new, primary_id, kinds)


Source = tuple[str, CuratedExample]  # (example id, example)


def _pair_rank(seed: int, a: str, b: str) -> str:
    """A pair's place in line, from its ids alone: adding a curated example leaves the other pairs'
    order as it was, so regenerating rewrites few combined files."""
    first, second = sorted((a, b))
    return hashlib.sha256(f"{seed}:{first}:{second}".encode()).hexdigest()


def combine_sources(sources: list[Source], count: int, seed: int) -> list[tuple[str, CuratedExample]]:
    """Up to `count` combined examples of one reviewer's `sources`, as (file stem, example).

    Pairs are taken in a stable hashed order, three defective-with-clean pairs to one pair of two
    defective sources, each source in at most a few pairs (so the defects are spread, not the same few
    repeated); the stronger source is the primary.
    """
    if count <= 0:
        return []
    defective = [s for s in sources if s[1].expected.verdict != Verdict.approve]
    clean = [s for s in sources if s[1].expected.verdict == Verdict.approve]
    queues = {
        "with-clean": sorted(((d, c) for d in defective for c in clean), key=lambda p: _pair_rank(seed, p[0][0], p[1][0])),
        "two-defects": sorted(((a, b) for i, a in enumerate(defective) for b in defective[i + 1:]),
                              key=lambda p: _pair_rank(seed, p[0][0], p[1][0])),
    }
    cap = 1 + -(-2 * count // max(len(sources), 1))  # uses per source: a fair share plus one
    uses: Counter[str] = Counter()
    made: list[tuple[str, CuratedExample]] = []
    position = dict.fromkeys(queues, 0)
    turn = 0
    while len(made) < count and any(position[k] < len(q) for k, q in queues.items()):
        kind = "two-defects" if turn % 4 == 3 or position["with-clean"] >= len(queues["with-clean"]) else "with-clean"
        if position[kind] >= len(queues[kind]):
            kind = "with-clean"
        turn += 1
        while position[kind] < len(queues[kind]):
            first, second = queues[kind][position[kind]]
            position[kind] += 1
            if uses[first[0]] >= cap or uses[second[0]] >= cap:
                continue
            primary, partner = sorted((first, second), key=lambda s: (VERDICT_RANK[s[1].expected.verdict], s[0]))
            rng = random.Random(_pair_rank(seed, primary[0], partner[0]))
            try:
                new = combine(primary[1], primary[0], partner[1], partner[0], rng)
            except (AugmentError, ExampleError) as exc:
                log.debug("%s + %s: not combined: %s", primary[0], partner[0], exc)
                continue
            uses.update((primary[0], partner[0]))
            made.append((f"{primary[0].split('/', 1)[1]}--with--{partner[0].split('/', 1)[1]}", new))
            break
    return made


def read_rejected(out: Path) -> dict[str, str]:
    """Source ids whose clean twins a person rejected, with the reason (`REJECTED_TWINS` in `out`)."""
    path = out / REJECTED_TWINS
    if not path.is_file():
        return {}
    rejected = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            source_id, _, why = line.strip().partition(" ")
            rejected[source_id] = why.strip()
    return rejected


def _same_derivation(path: Path, new: CuratedExample) -> bool:
    """Whether `path` already holds `new` (a person's review and the analyzer evidence are kept)."""
    if not path.is_file():
        return False
    try:
        old = load_example(path)
    except ExampleError:
        return False
    ignore = {"tags", "check_output"}
    return old.model_dump(mode="json", exclude=ignore) == new.model_dump(mode="json", exclude=ignore)


def augment_dataset(
    examples_dir: Path, out: Path, reviewers: list[str] | None = None, seed: int = 0,
    eval_fraction: float = DEFAULT_EVAL_FRACTION, fill_to: int = DEFAULT_FILL_TO,
) -> dict[str, int]:
    """Write the clean twins and combined examples of every train-split curated example under `out`.

    Combined examples fill each reviewer up to `fill_to` examples (curated + derived). `out/<reviewer>/`
    ends up holding exactly this run's derivations: a file whose derivation is unchanged is left as it
    is (a reviewed twin stays reviewed), others are rewritten, stale ones removed. Returns counts per
    kind, plus `eval-split-skipped`: curated sources held out from derivation.
    """
    if out.resolve() == examples_dir.resolve():
        raise AugmentError(f"--out {out} must differ from the curated folder {examples_dir}")
    rejected = read_rejected(out)
    by_reviewer: dict[str, list[Source]] = {}
    for path, example in load_examples(examples_dir).items():
        if not example.derived_from and (not reviewers or example.reviewer in reviewers):
            by_reviewer.setdefault(example.reviewer, []).append((example_id(path), example))
    curated_changes = {change_digest(parse_example_diff(ex.diff)) for group in by_reviewer.values()
                       for _, ex in group}
    counts: Counter[str] = Counter()
    for reviewer, curated in sorted(by_reviewer.items()):
        held = held_out_roots((source_id for source_id, _ in curated), eval_fraction)
        sources = [s for s in curated if s[0] not in held]
        counts["eval-split-skipped"] += len(curated) - len(sources)
        derived: list[tuple[str, str, CuratedExample]] = []  # (kind, file stem, example)
        for source_id, example in sources:
            if source_id in rejected:
                continue
            try:
                twin = derive(example, source_id, "clean-twin", random.Random(f"{seed}:{source_id}:clean-twin"))
            except (AugmentError, ExampleError) as exc:
                log.debug("%s: no clean twin: %s", source_id, exc)
                continue
            if change_digest(parse_example_diff(twin.diff)) in curated_changes:
                continue  # a person already wrote this fix as an example (or it only re-indents a line)
            derived.append(("clean-twin", f"{source_id.split('/', 1)[1]}--clean-twin", twin))
        room = fill_to - len(curated) - len(derived)
        for stem, new in combine_sources(sources, room, seed):
            derived.append(("combined", stem, new))
        folder = out / reviewer
        folder.mkdir(parents=True, exist_ok=True)
        wanted = set()
        for kind, stem, new in derived:
            target = folder / f"{stem}.yaml"
            wanted.add(target)
            if not _same_derivation(target, new):
                target.write_text(dump_example(new), encoding="utf-8")
            counts[kind] += 1
        for stale in sorted(set(folder.glob("*.yaml")) - wanted):
            stale.unlink()
    return dict(counts)
