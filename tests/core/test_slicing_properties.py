"""Property tests: random multi-file git diffs, tiny budgets, random caps, and random junk.

Generated diffs are checked with `check_plan` (unidiff as the oracle), and the generator's own record of
which lines it added is checked against unidiff first, so a generator bug cannot hide a slicer bug.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from reviewers.slicing import DiffParseError, SliceLimits, slice_diff
from tests.core.test_slicing import check_plan, oracle

FOLDERS = (
    "src",
    "tests",
    "app/api",
    "migrations",
    "k8s",
    "vendor",
    "dags",
    ".github/workflows",
    "charts/web",
    "with space",
    "caf\u00e9",
    "node_modules/x",
    "dist",
)
NAMES = ("main", "test_main", "models", "Button", "index", "deploy", 'q"uote', "back\\slash", "\u00fcber")
SUFFIXES = (
    ".py",
    ".ts",
    ".tsx",
    ".test.ts",
    ".vue",
    ".sql",
    ".go",
    "_test.go",
    ".md",
    ".yml",
    ".tf",
    ".lock",
    ".min.js",
    ".png",
    ".txt",
    "",
)
SPECIAL = (
    "Dockerfile",
    "Dockerfile.dev",
    "Makefile",
    "Procfile",
    "docker-compose.yml",
    "conftest.py",
    "package-lock.json",
    "app.service",
)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIFF_WORDS = (  # junk made of diff syntax reaches the scanner's corners that random bytes never do
    "diff --git a/x.py b/x.py",
    "diff --git a/x.py",
    "--- a/x.py",
    "+++ b/x.py",
    "--- /dev/null",
    "+++ /dev/null",
    "@@ -1 +1 @@",
    "@@ -0,0 +1,2 @@",
    "@@ -3,2 +3,0 @@ f",
    "@@@ -1 -1 +1 @@@",
    "@@ -1",
    "+a",
    "-b",
    " c",
    "",
    "\r",
    "\\ No newline at end of file",
    "Binary files a/x.py and b/x.py differ",
    "GIT binary patch",
    "rename from x.py",
    "rename to y.py",
    "new file mode 100644",
    "deleted file mode 100644",
    "old mode 100644",
    "new mode 100755",
    "index 1..2 100644",
    "garbage",
)

_short_line = st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=50)
_long_line = st.builds(
    lambda c, n: c * n, st.sampled_from("xé\t\r "), st.integers(200, 1200)
)  # over tiny budgets
line_text = st.one_of(_short_line, _short_line, _short_line, _short_line, _long_line)


def git_quote(name: str) -> str:
    """Quote a name as git does with core.quotepath on (the default): octal escapes for non-ASCII."""
    if not any(ch in '"\\\t' or ord(ch) < 32 or ord(ch) > 126 for ch in name):
        return name
    out = []
    for ch in name:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) > 126:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def header_name(prefix: str, path: str) -> str:
    quoted = git_quote(prefix + path)
    return quoted + ("\t" if " " in path and not quoted.startswith('"') else "")


@dataclass
class GenFile:
    text: str
    path: str
    added: set[int]


@st.composite
def file_paths(draw) -> str:
    if draw(st.booleans()):
        return f"{draw(st.sampled_from(FOLDERS))}/{draw(st.sampled_from(SPECIAL))}"
    return f"{draw(st.sampled_from(FOLDERS))}/{draw(st.sampled_from(NAMES))}{draw(st.sampled_from(SUFFIXES))}"


@st.composite
def hunks(draw, kind: str) -> tuple[str, set[int]]:
    """Hunks of one file and the new-file numbers of the lines they add."""
    body_parts: list[str] = []
    added: set[int] = set()
    eol = "\r" if draw(st.integers(0, 4)) == 0 else ""  # a CRLF file: git keeps the CR in each line
    old_no = new_no = 1
    count = 1 if kind in ("added", "deleted") else draw(st.integers(1, 4))
    for _ in range(count):
        gap = 0 if kind in ("added", "deleted") else draw(st.integers(1, 25))
        old_no += gap
        new_no += gap
        if kind == "added":
            ops = ["+"] * draw(st.integers(1, 30))
        elif kind == "deleted":
            ops = ["-"] * draw(st.integers(1, 20))
        else:
            ops = draw(st.lists(st.sampled_from(" +-"), min_size=1, max_size=30))
        lines = []
        old_start, new_start = old_no, new_no
        for op in ops:
            lines.append(op + draw(line_text) + eol)
            if op == "+":
                added.add(new_no)
            if op in " +":
                new_no += 1
            if op in " -":
                old_no += 1
        old_len, new_len = old_no - old_start, new_no - new_start
        header = (
            f"@@ -{old_start if old_len else old_start - 1},{old_len} "
            f"+{new_start if new_len else new_start - 1},{new_len} @@"
        )
        section = draw(st.sampled_from(["", " def run(self):", " class Thing"]))
        body_parts.append(header + section + "\n" + "\n".join(lines) + "\n")
    text = "".join(body_parts)
    if draw(st.booleans()):
        text += "\\ No newline at end of file\n"
    return text, added


@st.composite
def file_diffs(draw, path: str) -> GenFile:
    kind = draw(st.sampled_from(["modified", "modified", "added", "deleted", "renamed", "binary"]))
    old = path
    if kind == "renamed":
        old = "old/" + path
    head = f"diff --git {git_quote('a/' + old)} {git_quote('b/' + path)}\n"
    if kind == "binary":
        return GenFile(
            head + f"index 1111111..2222222 100644\nBinary files a/{old} and b/{path} differ\n", path, set()
        )
    body, added = draw(hunks(kind))
    if kind == "added":
        head += "new file mode 100644\nindex 0000000..2222222\n"
        names = f"--- /dev/null\n+++ {header_name('b/', path)}\n"
    elif kind == "deleted":
        head += "deleted file mode 100644\nindex 1111111..0000000\n"
        names = f"--- {header_name('a/', old)}\n+++ /dev/null\n"
    else:
        if kind == "renamed":
            head += f"similarity index 90%\nrename from {git_quote(old)}\nrename to {git_quote(path)}\n"
        head += "index 1111111..2222222 100644\n"
        names = f"--- {header_name('a/', old)}\n+++ {header_name('b/', path)}\n"
    return GenFile(head + names + body, path, added)


@st.composite
def diffs(draw) -> tuple[str, list[GenFile]]:
    paths = draw(st.lists(file_paths(), min_size=1, max_size=6, unique=True))
    files = [draw(file_diffs(p)) for p in paths]
    return "".join(f.text for f in files), files


@st.composite
def limits(draw) -> SliceLimits:
    tight = draw(st.booleans())
    return SliceLimits(
        budget_tokens=draw(st.integers(64, 300)),
        overlap_lines=draw(st.integers(0, 4)),
        max_files=draw(st.integers(1, 6)) if tight else 1000,
        max_slices_per_reviewer=draw(st.integers(1, 5)) if tight else 10_000,
        max_diff_bytes=draw(st.integers(200, 20_000)) if tight and draw(st.booleans()) else 10**8,
    )


@SETTINGS
@given(diffs(), limits())
def test_random_diffs_keep_every_invariant(diff, caps):
    text, files = diff
    truth = oracle(text)
    assert truth is not None, "the generator must write diffs unidiff can read"
    for f in files:  # the generator and unidiff agree on what was added
        assert truth[f.path].added == f.added
    as_bytes = text.encode("utf-8", "surrogatepass")
    plan = slice_diff(as_bytes if len(text) % 2 else text, caps)
    check_plan(plan, text, caps)
    event(f"split hunks: {any(s.split_hunk for s in plan.slices)}")
    event(f"over-budget line: {any(s.over_budget for s in plan.slices)}")
    event(f"slice cap hit: {any(n.reviewer for n in plan.not_reviewed)}")
    event(f"reviewers: {len({s.reviewer for s in plan.slices})}")


@settings(SETTINGS, max_examples=60)
@given(diffs(), st.integers(64, 200))
def test_tiny_budgets_without_caps_review_every_added_line(diff, budget):
    text, _ = diff
    caps = SliceLimits(budget_tokens=budget, overlap_lines=3, max_files=1000, max_slices_per_reviewer=10_000)
    plan = slice_diff(text, caps)
    check_plan(plan, text, caps)
    assert not any(n.reviewer for n in plan.not_reviewed)  # no slice cap can have cut anything


def mutate(text: str, data: st.DataObject) -> str:
    lines = text.split("\n")
    how = data.draw(st.sampled_from(["drop", "duplicate", "truncate", "insert", "flip"]))
    k = data.draw(st.integers(0, max(0, len(lines) - 1)))
    if how == "drop":
        del lines[k]
    elif how == "duplicate":
        lines.insert(k, lines[k])
    elif how == "truncate":
        return text[: data.draw(st.integers(0, len(text)))]
    elif how == "insert":
        lines.insert(
            k, data.draw(st.sampled_from(["garbage", "@@ -1 +1 @@", "+++ b/x", "diff --git a b", ""]))
        )
    else:
        lines[k] = data.draw(st.sampled_from("+- @\\d")) + lines[k][1:]
    return "\n".join(lines)


@settings(SETTINGS, max_examples=60)
@given(diffs(), st.data())
def test_damaged_diffs_give_a_plan_or_a_diff_parse_error(diff, data):
    text = mutate(diff[0], data)
    caps = SliceLimits(budget_tokens=128)
    try:
        plan = slice_diff(text, caps)
    except DiffParseError as exc:
        assert str(exc)
        return
    check_plan(plan, text, caps, structure_only=True)  # structure only: a damaged diff has no single truth


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=3000),
        st.lists(st.sampled_from(DIFF_WORDS), max_size=40).map("\n".join),
    )
)
def test_arbitrary_input_raises_nothing_but_diff_parse_error(junk):
    try:
        plan = slice_diff(junk, SliceLimits(budget_tokens=64))
    except DiffParseError:
        return
    assume(plan.slices)
    check_plan(plan, "", SliceLimits(budget_tokens=64), structure_only=True)
