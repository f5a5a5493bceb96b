"""The one diff parser (`reviewers.unified_diff`) against unidiff, the tests' independent oracle.

Real pull-request diffs, unidiff's own samples and generated diffs (the strategy of
test_slicing_properties.py) must read the same: the same files, deleted files, added lines, lines shown
on the new side with their text, and the same anchor spans. Filtering (`ParsedDiff.only`) must give
byte-for-byte sections whose parse equals a fresh parse of the kept text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import unidiff
from hypothesis import given, settings

from reviewers.anchoring import DiffAnchors
from reviewers.unified_diff import ParsedDiff, parse_unified_diff
from tests.core.test_slicing import MALFORMED_SAMPLES, norm, oracle, read
from tests.core.test_slicing_properties import SETTINGS, diffs


def readings(parsed: ParsedDiff) -> dict[str, dict[str, object]]:
    """What the parser reads per path, in the oracle's terms (merged when a path appears twice)."""
    out: dict[str, dict[str, object]] = {}
    for f in parsed.files:
        entry = out.setdefault(f.path, {"added": set(), "shown": {}, "deleted": False})
        entry["deleted"] = f.status == "deleted"
        for h in f.hunks:
            for a, b in h.added_runs():
                entry["added"].update(range(a, b + 1))  # type: ignore[attr-defined]
            for number, _mark, text in h.new_lines():
                entry["shown"][number] = text  # type: ignore[index]
    return out


def assert_reads_like_unidiff(text: str) -> None:
    truth = oracle(text)
    assert truth is not None
    patch = unidiff.PatchSet(text)
    parsed = parse_unified_diff(text)
    assert not any(f.error for f in parsed.files), [f.error for f in parsed.files if f.error]
    mine = readings(parsed)
    assert set(mine) == set(truth)
    assert {norm(p.path) for p in patch if p.is_removed_file} == set(parsed.removed_paths())
    anchors = DiffAnchors.of(parsed)
    for path, expected in truth.items():
        got = mine[path]
        assert got["added"] == expected.added, path
        assert set(got["shown"]) == expected.commentable, path  # type: ignore[arg-type]
        for number, value in expected.new_lines.items():
            assert got["shown"][number] + "\n" == value, (path, number)  # type: ignore[index]
        shown = {n for a, b in anchors.spans[path] for n in range(a, b + 1)}
        assert shown == expected.commentable, path
    hunk_spans = {
        (norm(pf.path), h.target_start, h.target_start + h.target_length - 1)
        for pf in patch for h in pf if h.target_length > 0 and not pf.is_removed_file
    }
    assert {(p, a, b) for p, spans in anchors.spans.items() for a, b in spans} == hunk_spans


def test_real_diffs_read_as_unidiff_reads_them(real_diffs: list[Path]) -> None:
    assert len(real_diffs) >= 20
    for path in real_diffs:
        assert_reads_like_unidiff(read(path))


def test_unidiff_samples_read_as_unidiff_reads_them(unidiff_samples: list[Path]) -> None:
    checked = 0
    for path in unidiff_samples:
        text = read(path)
        if path.name in MALFORMED_SAMPLES or oracle(text) is None:
            continue
        parsed = parse_unified_diff(text)
        if any(f.error for f in parsed.files):
            continue  # unidiff is lenient where the parser reports a broken file; test_slicing covers those
        assert_reads_like_unidiff(text)
        checked += 1
    assert checked >= 15


@SETTINGS
@given(diffs())
def test_generated_diffs_read_as_unidiff_reads_them(diff) -> None:
    text, files = diff
    assert_reads_like_unidiff(text)
    mine = readings(parse_unified_diff(text))
    assert {f.path: f.added for f in files} == {p: r["added"] for p, r in mine.items()}


def same_reading(a: ParsedDiff, b: ParsedDiff) -> None:
    assert [(f.path, f.status, f.old_path, f.binary, f.diff_line) for f in a.files] == [
        (f.path, f.status, f.old_path, f.binary, f.diff_line) for f in b.files
    ]
    for fa, fb in zip(a.files, b.files, strict=True):
        assert [(h.header(), h.lines, h.diff_line) for h in fa.hunks] == [
            (h.header(), h.lines, h.diff_line) for h in fb.hunks
        ]


@pytest.mark.parametrize("keep_every", [1, 2, 3])
def test_filtering_cuts_whole_sections_and_renumbers_like_a_fresh_parse(real_diffs, keep_every) -> None:
    for path in real_diffs:
        text = read(path)
        parsed = parse_unified_diff(text)
        keep = {p for i, p in enumerate(parsed.paths()) if i % keep_every == 0}
        kept, dropped = parsed.only(lambda p, keep=keep: p in keep)
        assert set(dropped) == set(parsed.paths()) - keep
        assert set(kept.paths()) == keep
        same_reading(kept, parse_unified_diff(kept.text))
        if keep_every == 1:
            assert kept is parsed and kept.text == text


@settings(SETTINGS, max_examples=60)
@given(diffs())
def test_filtering_generated_diffs_keeps_each_file_byte_for_byte(diff) -> None:
    text, files = diff
    parsed = parse_unified_diff(text)
    for drop in files:
        kept, dropped = parsed.only(lambda p, drop=drop: p != drop.path)
        assert dropped == [drop.path]
        assert kept.text == "".join(f.text for f in files if f is not drop)
        same_reading(kept, parse_unified_diff(kept.text))


def test_hunks_know_where_they_sit_in_the_text(real_diffs) -> None:
    for path in real_diffs[:5]:
        text = read(path)
        lines = text.split("\n")
        for f in parse_unified_diff(text).files:
            assert lines[f.diff_line - 1].startswith(("diff --git ", "--- ", "Binary files"))
            for h in f.hunks:
                assert lines[h.diff_line - 1].startswith("@@ ")
                assert lines[h.diff_line : h.diff_line + len(h.lines)] == h.lines


def test_unidiff_is_imported_only_by_tests() -> None:
    root = Path(__file__).resolve().parents[2]
    product = [p for folder in ("app", "reviewers", "training", "eval", "bench") if (root / folder).is_dir()
               for p in (root / folder).rglob("*.py")]
    assert product
    importing = [str(p.relative_to(root)) for p in product
                 if any(line.lstrip().startswith(("import unidiff", "from unidiff"))
                        for line in p.read_text(encoding="utf-8").splitlines())]
    assert importing == []
