"""`calora data augment`: derive boundary cases from curated examples, into a separate folder.

Three derivations, each validated exactly like a hand-written example and marked `derived_from`:

- **renamed**: identifiers the diff defines (functions, classes, variables) get other plausible names,
  consistently across diff, task, context and expected answer. Same verdict, same lines: the reviewer
  must judge the code, not remember names.
- **moved**: blank added lines are inserted before the first finding, so the defect sits at another
  line number; every later line reference shifts. Teaches line numbers instead of memorised positions.
- **clean twin**: a one-finding revise/block example whose finding carries a `suggestion` gets that
  suggestion applied to the diff and the expected answer becomes a clean approve. The suggestion may
  not fix everything the message says, so twins are tagged `review-before-use` for a human to check.

Derived files go to `datasets-derived/<reviewer>/<id>--<kind>.yaml` (never into the curated folder);
`calora data build --examples datasets datasets-derived` trains on both. The split keeps a derived
example on the same side as its source (see `training.dataset_build`).
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from reviewers.contract import Finding, ReviewerOutput, Verdict
from reviewers.unified_diff import Hunk, format_hunk_header, parse_unified_diff
from training.examples import CuratedExample, ExampleError, example_id, load_examples, validate_example

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
    tags = [t for t in example.tags if t not in ("block", "revise")] + ["clean", "review-before-use"]
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
    tags = [t for t in new.tags if t != "derived"] + ["derived", kind]
    new = new.model_copy(update={"derived_from": source_id, "tags": list(dict.fromkeys(tags))})
    validate_example(CuratedExample.model_validate(new.model_dump(mode="json")))
    return new


def augment_dataset(
    examples_dir: Path, out: Path, reviewers: list[str] | None = None, seed: int = 0
) -> dict[str, int]:
    """Write every applicable derivation of every curated example under `out`; returns counts per kind."""
    if out.resolve() == examples_dir.resolve():
        raise AugmentError(f"--out {out} must differ from the curated folder {examples_dir}")
    counts: Counter[str] = Counter()
    for path, example in load_examples(examples_dir).items():
        if example.derived_from or (reviewers and example.reviewer not in reviewers):
            continue
        source_id = example_id(path)
        for kind in KINDS:
            rng = random.Random(f"{seed}:{source_id}:{kind}")
            try:
                new = derive(example, source_id, kind, rng)
            except (AugmentError, ExampleError) as exc:
                log.debug("%s: no %s: %s", source_id, kind, exc)
                continue
            target = out / example.reviewer / f"{path.stem}--{kind}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump_example(new), encoding="utf-8")
            counts[kind] += 1
    return dict(counts)


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: object) -> str:
    """YAML with block scalars for multi-line strings (diffs stay readable)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def dump_example(example: CuratedExample) -> str:
    """YAML in the curated layout (block scalars for the diff); round-trips through `load_example`."""
    data = example.model_dump(mode="json", exclude_none=True)
    data["expected"] = example.expected.model_dump(mode="json", exclude_none=True)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
