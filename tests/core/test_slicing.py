"""Slicing a diff into bounded per-reviewer slices, checked against unidiff as an independent oracle.

`check_plan` states what every plan must satisfy; test_slicing_properties.py reuses it on generated diffs.
"""

from __future__ import annotations

import codecs
import gc
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import unidiff
from pydantic import BaseModel, ValidationError

from reviewers.routing import REVIEWER_NAMES, RouteDecision, route_file
from reviewers.slicing import (
    DEFAULT_LIMITS,
    DiffParseError,
    LineRange,
    LineSpans,
    SliceLimits,
    SlicePlan,
    approx_token_count,
    render_plan,
    slice_diff,
)
from tests.conftest import REPO_ROOT

# unidiff's own malformed samples: every file in them is broken, so slice_diff must refuse them
MALFORMED_SAMPLES = {"sample1.diff", "sample6.diff", "sample7.diff"}
WIDE_CAPS = {"max_files": 10_000, "max_slices_per_reviewer": 100_000}
SAMPLE_DIFF = REPO_ROOT / "samples" / "storefront.diff"


def route_everything(path: str, enabled: tuple[str, ...] | None = None) -> RouteDecision:
    """A router that sends every file to one reviewer, so that every sample file gets sliced."""
    return RouteDecision(path=path, reviewers=("python",))


def norm(path: str) -> str:
    """unidiff's path in slice_diff's form: git quoting undone (independently), no leading '/'.

    unidiff keeps the CR of a CRLF header line in the name; the file name has none.
    """
    path = path.rstrip("\r")
    if len(path) >= 2 and path.startswith('"') and path.endswith('"'):
        path = codecs.escape_decode(path[1:-1].encode("utf-8"))[0].decode("utf-8")
    return path.lstrip("/")


def expand(ranges: LineSpans | list[tuple[int, int]]) -> list[int]:
    return [n for start, end in ranges for n in range(start, end + 1)]


@dataclass
class OracleFile:
    """What unidiff reads for one file of the original diff."""

    added: set[int] = field(default_factory=set)
    commentable: set[int] = field(default_factory=set)
    new_lines: dict[int, str] = field(default_factory=dict)
    old_lines: dict[int, str] = field(default_factory=dict)
    skipped: bool = False  # binary, deleted, symlink or without hunks: never sliced


def oracle(text: str) -> dict[str, OracleFile] | None:
    try:
        patch = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError:
        return None
    files: dict[str, OracleFile] = {}
    for pf in patch:
        entry = files.setdefault(norm(pf.path), OracleFile())
        entry.skipped = pf.is_binary_file or pf.is_removed_file or pf.is_symlink or not len(pf)
        for hunk in pf:
            for line in hunk:
                if line.target_line_no is not None:
                    entry.new_lines[line.target_line_no] = line.value
                    entry.commentable.add(line.target_line_no)
                    if line.is_added:
                        entry.added.add(line.target_line_no)
                if line.source_line_no is not None:
                    entry.old_lines[line.source_line_no] = line.value
    return files


def check_plan(
    plan: SlicePlan,
    text: str,
    limits: SliceLimits,
    router=route_file,
    count_tokens=approx_token_count,
    structure_only: bool = False,
) -> None:
    """Every invariant of a plan, against unidiff's reading of `text` (skipped for `structure_only`)."""
    truth = None if structure_only else oracle(text)
    table_order = {name: i for i, name in enumerate(REVIEWER_NAMES)}

    # order: the reviewer table's order, indexes from 0 per reviewer
    names = [s.reviewer for s in plan.slices]
    assert names == sorted(names, key=lambda n: table_order.get(n, len(table_order)))
    for reviewer in set(names):
        assert [s.index for s in plan.slices if s.reviewer == reviewer] == list(range(names.count(reviewer)))

    seen: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    shown: dict[tuple[str, str], set[int]] = defaultdict(set)
    for s in plan.slices:
        # the budget: only a slice holding a single diff line may exceed it, and it says so
        if s.over_budget:
            body = [ln for ln in s.diff.split("\n")[:-1] if ln[:1] in (" ", "+", "-")]
            body = [ln for ln in body if not ln.startswith(("--- ", "+++ "))]
            assert len(body) == 1, s.diff[:300]
            assert len(s.files) == 1
        else:
            assert s.tokens <= limits.budget_tokens
        if count_tokens is approx_token_count:
            assert count_tokens(s.diff) <= s.tokens  # the bounded sum covers the real text
        # the slice is a valid diff on its own (unidiff checks every @@ header against its lines)
        patch = unidiff.PatchSet(s.diff)
        assert len(patch) == len(s.files)
        for fs, pf in zip(s.files, patch):
            assert norm(pf.path) == fs.path
            right = {ln.target_line_no for h in pf for ln in h if ln.is_added or ln.is_context}
            plus = {ln.target_line_no for h in pf for ln in h if ln.is_added}
            assert set(expand(fs.commentable)) == right
            assert set(expand(fs.ranges)) == right
            owned = expand(fs.added)
            assert len(owned) == len(set(owned)) and set(owned) <= plus
            overlap = plus - set(owned)
            if overlap:  # repeated lines of a split hunk: at the top of a piece, never owned twice
                assert s.split_hunk
                for h in pf:
                    rows = [ln for ln in h if ln.line_type != "\\"]
                    for k, ln in enumerate(rows):
                        if ln.is_added and ln.target_line_no in overlap:
                            assert k < limits.overlap_lines
            key = (s.reviewer, fs.path)
            seen[key].update(owned)
            shown[key] |= right
            if truth is not None:
                original = truth[fs.path]
                for h in pf:  # same text at the same line numbers as the original: headers are right
                    for ln in h:
                        if ln.target_line_no is not None:
                            assert original.new_lines[ln.target_line_no] == ln.value
                        if ln.source_line_no is not None:
                            assert original.old_lines[ln.source_line_no] == ln.value

    left: dict[tuple[str, str], list[int]] = {}
    for n in plan.not_reviewed:
        assert n.reason
        if n.reviewer is not None:
            left[(n.reviewer, n.path)] = expand(n.lines)
    file_level = {n.path for n in plan.not_reviewed if n.reviewer is None}
    if truth is None:
        return
    # nothing dropped silently: every file is sliced or listed, every added line owned exactly once
    for path, original in truth.items():
        if original.skipped:
            assert path in file_level, path
            continue
        if path in file_level:
            assert not any(p == path for _, p in seen), path
            continue
        decision = router(path, None)
        assert decision.reviewers, path
        for reviewer in decision.reviewers:
            key = (reviewer, path)
            assert key in seen or key in left, key
            counts = seen.get(key, Counter())
            assert all(c == 1 for c in counts.values()), (key, counts.most_common(3))
            missed = set(left.get(key, []))
            assert not (missed & set(counts))
            assert set(counts) | missed == original.added, key
            if key not in left:
                assert shown[key] == original.commentable, key


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace")


def all_diffs(real_diffs: list[Path], unidiff_samples: list[Path]) -> list[Path]:
    assert len(real_diffs) >= 20 and len(unidiff_samples) >= 20
    return real_diffs + unidiff_samples


@pytest.mark.parametrize("budget", [3000, 300, 64])
@pytest.mark.parametrize("router", [route_file, route_everything], ids=["table", "everything"])
def test_every_real_and_sample_diff_slices_within_budget_and_owns_each_added_line_once(
    real_diffs, unidiff_samples, budget, router
):
    limits = SliceLimits(budget_tokens=budget, **WIDE_CAPS)
    for path in all_diffs(real_diffs, unidiff_samples):
        data = path.read_bytes()
        if path.name in MALFORMED_SAMPLES:
            with pytest.raises(DiffParseError, match="hunk"):
                slice_diff(data, limits, route=router)
            continue
        plan = slice_diff(data, limits, route=router)
        check_plan(plan, read(path), limits, router)


def test_default_caps_list_what_they_leave_out(real_diffs):
    limits = SliceLimits(budget_tokens=200)  # default caps: 20 slices per reviewer
    text = read(next(p for p in real_diffs if p.name.startswith("013-")))
    plan = slice_diff(text, limits)
    check_plan(plan, text, limits)
    capped = [n for n in plan.not_reviewed if n.reviewer == "react"]
    assert capped and all("over max_slices_per_reviewer=20" in n.reason for n in capped)
    assert len(plan.for_reviewer("react")) == 20
    assert any("react needed" in note for note in plan.notes)


def test_hunk_split_pieces_are_valid_hunks_with_overlap_marked(real_diffs):
    text = read(next(p for p in real_diffs if p.name.startswith("013-")))
    limits = SliceLimits(budget_tokens=120, overlap_lines=3, **WIDE_CAPS)
    plan = slice_diff(text, limits)
    split = [s for s in plan.slices if s.split_hunk]
    assert split, "a 120-token budget must split some hunks of a 9,000-line change"
    check_plan(plan, text, limits)
    # at least one piece repeats lines of the piece before it
    repeated = 0
    for s in split:
        for fs in s.files:
            plus = {
                ln.target_line_no for pf in unidiff.PatchSet(s.diff) for h in pf for ln in h if ln.is_added
            }
            repeated += len(plus - set(expand(fs.added)))
    assert repeated > 0


def test_a_single_line_longer_than_the_budget_goes_alone_and_is_flagged():
    long_line = "x = '" + "a" * 2000 + "'"
    diff = (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,4 @@\n"
        f" import os\n+y = 1\n+{long_line}\n import sys\n"
    )
    limits = SliceLimits(budget_tokens=100, overlap_lines=2)
    plan = slice_diff(diff, limits)
    check_plan(plan, diff, limits)
    flagged = [s for s in plan.slices if s.over_budget]
    assert len(flagged) == 1 and flagged[0].tokens > 100
    assert long_line in flagged[0].diff
    assert [ln for ln in flagged[0].diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")] == [
        "+" + long_line
    ]
    assert all(s.tokens <= 100 for s in plan.slices if not s.over_budget)
    assert [start for start, _ in flagged[0].files[0].added] == [3]


def test_no_newline_marker_stays_with_its_line_when_a_hunk_is_split():
    lines = "".join(f"+line number {i} of a new module\n" for i in range(1, 41))
    diff = (
        "diff --git a/m.py b/m.py\nnew file mode 100644\n--- /dev/null\n+++ b/m.py\n"
        f"@@ -0,0 +1,40 @@\n{lines}\\ No newline at end of file\n"
    )
    limits = SliceLimits(budget_tokens=80, overlap_lines=2, **WIDE_CAPS)
    plan = slice_diff(diff, limits)
    check_plan(plan, diff, limits)
    last = [s for s in plan.slices if "line number 40 " in s.diff]
    assert all("line number 40 of a new module\n\\ No newline at end of file\n" in s.diff for s in last)
    assert plan.slices[0].files[0].status == "added"


def test_crlf_diff_gives_the_same_lines_as_its_lf_twin(real_diffs):
    text = read(real_diffs[3])
    crlf = text.replace("\n", "\r\n")
    limits = SliceLimits(budget_tokens=300, **WIDE_CAPS)
    lf_plan, crlf_plan = slice_diff(text, limits), slice_diff(crlf, limits)
    check_plan(crlf_plan, crlf, limits)

    def lines(plan: SlicePlan) -> set[tuple[str, str, int]]:  # CRs cost tokens: the packing may differ
        return {(s.reviewer, f.path, n) for s in plan.slices for f in s.files for n in expand(f.added)}

    assert lines(lf_plan) and lines(crlf_plan) == lines(lf_plan)
    assert not any(f.path.endswith("\r") for s in crlf_plan.slices for f in s.files)


def test_cr_inside_a_line_does_not_split_it(unidiff_samples):
    path = next(p for p in unidiff_samples if p.name == "git_cr.diff")
    plan = slice_diff(path.read_bytes())
    assert [(s.reviewer, expand(s.files[0].added)) for s in plan.slices] == [("testing", [1, 2, 3])]


def test_non_utf8_bytes_are_replaced_and_the_plan_says_so():
    diff = b"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-name = 'caf\xe9'\n+name = 'caf\xc3\xa9'\n"
    plan = slice_diff(diff)
    assert plan.slices[0].diff.count("\ufffd") == 1
    bad_at = diff.index(b"\xe9")
    assert any("not valid UTF-8" in n and f"offset {bad_at}" in n for n in plan.notes)
    assert expand(plan.slices[0].files[0].added) == [1]


def test_lone_surrogates_in_text_are_replaced():
    plan = slice_diff("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\udc80\n")
    assert "\ufffd" in plan.slices[0].diff and plan.notes


@pytest.mark.parametrize("empty", ["", b"", "\n\n", "   \n"])
def test_empty_diff_gives_an_empty_plan(empty):
    plan = slice_diff(empty)
    assert plan.slices == [] and plan.not_reviewed == []


@pytest.mark.parametrize(
    "garbage",
    ["hello world\n", "@@ -1 +1 @@\n-a\n+b\n", b"\x00\xff\xfe binary junk", "*** a.c\n--- a.c\n", 42],
)
def test_garbage_raises_diff_parse_error_with_a_clear_message(garbage):
    with pytest.raises(DiffParseError) as info:
        slice_diff(garbage)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "not a unified diff" in message or "must be str or bytes" in message


def test_a_malformed_file_is_listed_and_the_others_are_still_sliced(unidiff_samples):
    path = next(p for p in unidiff_samples if p.name == "sample2.diff")
    plan = slice_diff(path.read_bytes(), route=route_everything)
    assert [f.path for s in plan.slices for f in s.files] == ["content/base/src/nsContentUtils.cpp"]
    (broken,) = [n for n in plan.not_reviewed if n.path == "js/src/jsfriendapi.cpp"]
    assert broken.reason.startswith("diff could not be parsed: hunk '@@ -527,16 +527,24 @@")
    assert "ends inside the hunk" in broken.reason


def test_binary_deleted_renamed_symlink_and_empty_files_are_listed_with_reasons(unidiff_samples):
    by_name = {p.name: p for p in unidiff_samples}

    def reasons(name: str) -> dict[str, str]:
        return {n.path: n.reason for n in slice_diff(by_name[name].read_bytes()).not_reviewed}

    assert reasons("binary.diff") == {"1x1.png": "binary file"}
    assert reasons("git_delete.diff") == {"somefile.c": "file deleted"}
    assert reasons("git_symlink.diff") == {"bin/check": "symbolic link"}
    assert reasons("git_rename.diff")["sub/otherfile"] == "renamed without content changes"
    assert reasons("sample8.diff") == {
        "boo.bin": "empty file added",
        "foo.bin": "binary file",
        "bar.bin": "binary file",
        "baz.bin": "binary file",
        "fuz.bin": "empty file added",
    }
    assert reasons("debdiff.diff")["t/p2/a.png"] == "binary file"


def test_renamed_and_new_files_keep_status_and_old_path(real_diffs, unidiff_samples):
    renamed = next(p for p in real_diffs if p.name.startswith("016-"))
    files = {f.path: f for s in slice_diff(renamed.read_bytes()).slices for f in s.files}
    assert files["uno.config.ts"].status == "renamed"
    assert files["uno.config.ts"].old_path == "unocss.config.ts"
    assert "--- a/unocss.config.ts\n+++ b/uno.config.ts\n" in next(
        s.diff for s in slice_diff(renamed.read_bytes()).slices if s.file("uno.config.ts")
    )
    added = next(p for p in real_diffs if p.name.startswith("010-"))
    migration = "backend/app/alembic/versions/fe56fa70289e_add_created_at_to_user_and_item.py"
    plan = slice_diff(added.read_bytes())
    assert {s.reviewer for s in plan.slices if s.file(migration)} == {"python", "sql"}
    assert all(s.file(migration).status == "added" for s in plan.slices if s.file(migration))


def test_quoted_and_spaced_names_are_read_as_git_wrote_them(unidiff_samples):
    by_name = {p.name: p for p in unidiff_samples}
    plan = slice_diff(by_name["git_quoted_filename.diff"].read_bytes())
    assert [f.path for s in plan.slices for f in s.files] == ["A \u00e2 B.py"]
    plan = slice_diff(by_name["git_quoted_filename_with_spaces.diff"].read_bytes())
    assert [n.path for n in plan.not_reviewed] == ["docs/develop/Bug \u6392\u67e5.md"]
    plan = slice_diff(by_name["git_filenames_with_spaces.diff"].read_bytes())
    assert [f.path for s in plan.slices for f in s.files] == ["has spaces/t.sql"]


def test_files_over_max_files_are_listed_with_the_cap(real_diffs):
    text = read(next(p for p in real_diffs if p.name.startswith("013-")))
    plan = slice_diff(text, SliceLimits(max_files=5, max_slices_per_reviewer=1000))
    sliced = {f.path for s in plan.slices for f in s.files}
    over = [n.path for n in plan.not_reviewed if n.reason == "over max_files=5"]
    assert len(sliced) == 5 and len(over) > 50 and not (sliced & set(over))
    assert any("over max_files=5" in note for note in plan.notes)


def test_files_after_max_diff_bytes_are_named_not_read(real_diffs):
    path = next(p for p in real_diffs if p.name.startswith("013-"))
    data = path.read_bytes()
    limits = SliceLimits(max_diff_bytes=100_000, **WIDE_CAPS)
    plan = slice_diff(data, limits)
    full = slice_diff(data, SliceLimits(**WIDE_CAPS))
    over = [n for n in plan.not_reviewed if n.reason.startswith("over max_diff_bytes=100000")]
    assert over and f"diff is {len(data)} bytes" in over[0].reason
    kept_files = {f.path for s in plan.slices for f in s.files} | {
        n.path for n in plan.not_reviewed if not n.reason.startswith("over max_diff_bytes")
    }
    all_files = {f.path for s in full.slices for f in s.files} | {n.path for n in full.not_reviewed}
    assert kept_files | {n.path for n in over} == all_files and not (kept_files & {n.path for n in over})
    assert sum(len(s.diff) for s in plan.slices) < 100_000
    assert any("over max_diff_bytes=100000" in note for note in plan.notes)


def test_files_no_reviewer_covers_and_skipped_files_are_listed(real_diffs):
    plan = slice_diff(next(p for p in real_diffs if p.name.startswith("005-")).read_bytes())
    reasons = {n.path: n.reason for n in plan.not_reviewed}
    assert reasons["uv.lock"] == "lock file"
    assert reasons["pyproject.toml"] == "no reviewer covers this file type"


def test_enabled_limits_the_reviewers_and_unknown_names_are_noted(real_diffs):
    data = next(p for p in real_diffs if p.name.startswith("010-")).read_bytes()
    plan = slice_diff(data, enabled=("sql", "nope"))
    assert {s.reviewer for s in plan.slices} == {"sql"}
    assert any("unknown reviewers ignored: nope" in n for n in plan.notes)
    assert any(n.reason == "no enabled reviewer covers this file" for n in plan.not_reviewed)


def test_slices_follow_the_reviewer_table_then_the_diff_order(real_diffs):
    text = read(next(p for p in real_diffs if p.name.startswith("010-")))
    plan = slice_diff(text)
    assert [(s.reviewer, s.index) for s in plan.slices] == [("python", 0), ("sql", 0)]
    python_files = [f.path for f in plan.slices[0].files]
    in_diff = [line[len("+++ b/") :] for line in text.splitlines() if line.startswith("+++ b/")]
    assert python_files == [p for p in in_diff if p in python_files]


def test_slicing_is_deterministic(real_diffs):
    data = next(p for p in real_diffs if p.name.startswith("013-")).read_bytes()
    limits = SliceLimits(budget_tokens=500)
    assert slice_diff(data, limits).model_dump_json() == slice_diff(data, limits).model_dump_json()


def test_tokens_are_counted_per_hunk_not_per_append(real_diffs):
    """Counting the growing slice again on every append would count the text many times over."""
    data = next(p for p in real_diffs if p.name.startswith("013-")).read_bytes()
    counted = []

    def counter(text: str) -> int:
        counted.append(len(text))
        return approx_token_count(text)

    slice_diff(data, SliceLimits(**WIDE_CAPS), count_tokens=counter)
    assert sum(counted) < 1.2 * len(data)


def test_a_pluggable_counter_bounds_the_slices(real_diffs):
    def words(text: str) -> int:
        return len(text.split()) + text.count("\n")

    text = read(next(p for p in real_diffs if p.name.startswith("007-")))
    limits = SliceLimits(budget_tokens=150, **WIDE_CAPS)
    plan = slice_diff(text, limits, count_tokens=words)
    check_plan(plan, text, limits, count_tokens=words)
    assert all(words(s.diff) <= 150 for s in plan.slices if not s.over_budget)


def test_render_plan_gives_the_dry_run_json(real_diffs):
    plan = slice_diff(next(p for p in real_diffs if p.name.startswith("010-")).read_bytes())
    rendered = json.loads(json.dumps(render_plan(plan)))
    first = rendered["slices"][0]
    assert set(first) == {"reviewer", "index", "tokens", "split_hunk", "over_budget", "files"}
    assert first["reviewer"] == "python" and first["tokens"] == plan.slices[0].tokens
    assert first["files"][0]["lines"] == [list(span) for span in plan.slices[0].files[0].ranges]
    assert {n["path"] for n in rendered["not_reviewed"]} == {n.path for n in plan.not_reviewed}
    assert all(n["reason"] for n in rendered["not_reviewed"])
    assert rendered["summary"]["slices"] == len(plan.slices)


def test_a_pytest_file_is_sliced_for_python_and_for_testing():
    diff = (
        "diff --git a/tests/test_api.py b/tests/test_api.py\n--- a/tests/test_api.py\n+++ b/tests/test_api.py\n"
        "@@ -1,2 +1,3 @@\n import pytest\n+import httpx\n def test_ok():\n"
    )
    plan = slice_diff(diff)
    check_plan(plan, diff, DEFAULT_LIMITS)
    assert [(s.reviewer, expand(s.files[0].added)) for s in plan.slices] == [
        ("python", [2]),
        ("testing", [2]),
    ]


def test_copies_mode_changes_and_submodules_are_read():
    diff = (
        "diff --git a/app/a.py b/app/b.py\nsimilarity index 95%\ncopy from app/a.py\ncopy to app/b.py\n"
        "--- a/app/a.py\n+++ b/app/b.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
        "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
        "diff --git a/lib/vendored b/lib/vendored\nindex 1111111..2222222 160000\n--- a/lib/vendored\n"
        "+++ b/lib/vendored\n@@ -1 +1 @@\n-Subproject commit 1111111\n+Subproject commit 2222222\n"
    )
    plan = slice_diff(diff)
    (copied,) = [f for s in plan.slices for f in s.files]
    assert (copied.path, copied.old_path, copied.status) == ("app/b.py", "app/a.py", "added")
    assert {n.path: n.reason for n in plan.not_reviewed} == {
        "run.sh": "file mode change only (100644 -> 100755)",
        "lib/vendored": "submodule pointer",
    }


def test_a_diff_without_a_final_newline_is_read_whole():
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3"
    plan = slice_diff(diff)
    check_plan(plan, diff + "\n", DEFAULT_LIMITS)
    assert expand(plan.slices[0].files[0].added) == [2]


def test_max_diff_bytes_cuts_at_a_file_boundary_of_a_non_ascii_diff():
    section = (
        "diff --git a/m{0}.py b/m{0}.py\n--- a/m{0}.py\n+++ b/m{0}.py\n@@ -1 +1 @@\n-s = 'é'\n+s = 'ü'\n"
    )
    diff = "".join(section.format(i) for i in range(10))
    one = len(section.format(0).encode("utf-8"))
    plan = slice_diff(diff, SliceLimits(max_diff_bytes=3 * one + 5))
    assert [f.path for s in plan.slices for f in s.files] == ["m0.py", "m1.py", "m2.py"]
    assert [n.path for n in plan.not_reviewed] == [f"m{i}.py" for i in range(3, 10)]


def test_a_plan_reads_back_from_its_json_with_ranges_as_line_range_data(real_diffs):
    plan = slice_diff(real_diffs[0].read_bytes(), SliceLimits(budget_tokens=300, **WIDE_CAPS))
    file = next(f for s in plan.slices for f in s.files if len(f.added) > 1)
    assert file.model_dump()["added"] == [LineRange(start=a, end=b).model_dump() for a, b in file.added]
    again = SlicePlan.model_validate_json(plan.model_dump_json())
    assert again == plan and again.model_dump() == plan.model_dump()
    assert SlicePlan.model_validate(plan.model_dump()) == plan


def test_line_spans_are_validated_and_documented_as_line_range_data():
    class Kept(BaseModel):
        ranges: LineSpans

    schema = Kept.model_json_schema()
    assert schema["properties"]["ranges"]["items"] == {"$ref": "#/$defs/LineRange"}
    assert schema["$defs"]["LineRange"] == LineRange.model_json_schema()
    assert Kept.model_validate({"ranges": [{"start": 2, "end": 4}, (7, 7)]}).ranges == [(2, 4), (7, 7)]
    assert Kept.model_validate_json('{"ranges": [{"start": 2, "end": 4}]}').ranges.bounds == (2, 4)
    spans = LineSpans((1, 2, 5, 9, 12, 12))
    assert (spans[0], spans[-1], len(spans), spans[1:]) == ((1, 2), (12, 12), 3, [(5, 9), (12, 12)])
    with pytest.raises(IndexError):
        spans[3]
    with pytest.raises(ValidationError):
        Kept.model_validate({"ranges": [{"start": "one", "end": 2}]})
    with pytest.raises(ValidationError):
        Kept.model_validate({"ranges": [{"start": 1}]})


def test_a_plans_line_ranges_are_left_to_the_collector_untracked():
    """Why line ranges are int pairs: a 20 MB diff's plan has ~120k of them, and the garbage collector
    walks every tracked object on each full collection (bench/slicing_bench.py)."""
    plan = slice_diff(SAMPLE_DIFF.read_bytes(), SliceLimits(budget_tokens=64))
    gc.collect()  # a tuple is untracked once the tuples in it are: twice, as one pass may meet it first
    gc.collect()
    files = [f for s in plan.slices for f in s.files]
    assert files and any(f.added for f in files)
    assert not any(gc.is_tracked(f.added.bounds) or gc.is_tracked(f.ranges.bounds) for f in files)
