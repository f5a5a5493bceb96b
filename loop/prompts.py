"""What the author model reads (pure): its standing instructions, the task, and each round's feedback.

The author owns the change. Reviewers and analyzers advise; the author integrates what is right and may
decline a point with a reason (`REJECT <finding>: <reason>`), which the next round's summary shows beside
the finding. Feedback lists blockers first, then the analyzers' evidence and the failing test output, so
that what stops an approval is read first.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from loop.rounds import RoundRecord
from reviewers.prompt import ChatMessage
from reviewers.synthesis import MergedFinding

FEEDBACK_CHARS = 12_000
TEST_OUTPUT_CHARS = 4_000
HISTORY_CHARS = 60_000

AUTHOR_SYSTEM_PROMPT = """\
You are the author of a change to a git repository, and you own it. Specialist reviewers and static \
analyzers will read your patch and send you their findings; you decide what to do with each one. Fix \
what is right. You may decline a point you judge wrong: write one line `REJECT <finding>: <reason>` \
(the finding as path:line or its rule id), and keep your code.

Answer with the complete change as ONE unified diff, as `git diff` prints it, in a ```diff fenced block:
- paths relative to the repository root, with a/ and b/ prefixes; a new file uses `--- /dev/null`;
- every hunk with correct @@ line numbers and 3 lines of unchanged context;
- each revision is the whole change against the original commit, not a patch on your previous patch;
- never touch .git/ or anything outside the repository; no symbolic links, no binary files.
Keep prose short: at most a few sentences before the diff, REJECT lines after it.

The format, shown on another change (a function added below an existing one):
```diff
diff --git a/util/maths.py b/util/maths.py
--- a/util/maths.py
+++ b/util/maths.py
@@ -1,2 +1,6 @@
 def clamp(x: int, lo: int, hi: int) -> int:
     return max(lo, min(x, hi))
+
+
+def double(x: int) -> int:
+    return 2 * x
```"""


class RepoContext(BaseModel):
    """What the author is shown of the repository: its file list and the text of some files."""

    files: list[str] = Field(default_factory=list, description="Tracked files (capped).")
    more_files: int = Field(default=0, description="Tracked files left out of `files`.")
    contents: dict[str, str] = Field(default_factory=dict, description="Path → text, within a budget.")
    left_out: list[str] = Field(default_factory=list, description="Text files over the budget.")


def task_message(task: str, context: RepoContext) -> str:
    """The first user message: the task and the repository as it is at the base commit."""
    parts = ["## Task", task.strip(), "", "## Repository files"]
    parts += context.files or ["(no tracked files)"]
    if context.more_files:
        parts.append(f"... and {context.more_files} more")
    for path, text in context.contents.items():
        parts += ["", f"### {path}", "```", text.rstrip("\n"), "```"]
    if context.left_out:
        parts += ["", "Not shown (over the context budget): " + ", ".join(context.left_out[:30])]
    parts += ["", "Send the change as one ```diff block."]
    return "\n".join(parts)


def _finding_line(f: MergedFinding) -> str:
    end = f"-{f.end_line}" if f.end_line and f.end_line != f.line else ""
    who = ", ".join(f.raised_by)
    line = f"- {f.path}:{f.line}{end} [{f.severity.value}, {f.category.value}] ({who}) {' '.join(f.message.split())}"
    if f.suggestion:
        line += "\n  suggested replacement:\n" + "\n".join(f"    {s}" for s in f.suggestion.splitlines()[:20])
    return line


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "… (earlier output cut)\n" + text[-limit:]


def feedback_message(record: RoundRecord) -> str:
    """What the author reads after a round: why its patch was not taken, or the review, blockers first."""
    head = f"## Round {record.number}: {record.message}"
    if record.status == "author_error":
        body = "Your previous answer did not arrive. Send the change as one ```diff block."
    elif record.status == "no_patch":
        body = ("Your answer could not be used: it holds no unified diff. Answer with the diff itself: one ```diff "
                "block whose file sections start with `diff --git a/PATH b/PATH`, `--- a/PATH` (or /dev/null), "
                "`+++ b/PATH`, then `@@ -l,n +l,n @@` hunks.")
    elif record.status == "refused":
        body = "Your patch was refused before applying it:\n" + "\n".join(f"- {p}" for p in record.problems)
    elif record.status == "does_not_apply":
        body = ("Your patch does not apply to the original commit. `git apply --check` said:\n```\n"
                + _tail(record.check_output.strip(), 3000) + "\n```\nCheck the paths, the @@ line numbers and "
                "that the context lines match the files exactly.")
    elif record.status == "unchanged":
        body = "Your patch is the same as the previous one."
    else:
        body = _review_feedback(record)
    text = head + "\n\n" + body + "\n\nSend the complete revised change against the original commit as one " \
        "```diff block (REJECT lines for points you decline)."
    return _tail(text, FEEDBACK_CHARS) if len(text) > FEEDBACK_CHARS else text


def _review_feedback(record: RoundRecord) -> str:
    assert record.review is not None
    result = record.review.result
    parts: list[str] = [f"Review decision: {result.decision}."]
    if not result.complete and result.incomplete_reason:
        parts.append(f"The review is incomplete: {result.incomplete_reason}.")
    blockers = [f for f in result.findings if f.severity.value == "blocker"]
    others = [f for f in result.findings if f.severity.value != "blocker"]
    if blockers:
        parts += ["", "### Blockers (these stop an approval)"] + [_finding_line(f) for f in blockers]
    if others:
        parts += ["", "### Other findings"] + [_finding_line(f) for f in others]
    if result.nits:
        parts += ["", "### Nits (they do not stop an approval)"] + [_finding_line(f) for f in result.nits]
    if result.revision_plan:
        parts += ["", "### Revision plan"] + [f"{n}. {s}" for n, s in enumerate(result.revision_plan, 1)]
    evidence = [f for f in result.findings if any(r.startswith("checks") for r in f.raised_by)]
    if evidence:
        parts += ["", "### Check output (analyzers on your changed lines)"]
        parts += [f"- {', '.join(f.raised_by)} {f.path}:{f.line}: {' '.join(f.message.split())}" for f in evidence]
    if result.missing_checks:
        parts += ["", "### Missing checks"] + [f"- {m}" for m in result.missing_checks]
    if record.tests is not None and not record.tests.passed:
        t = record.tests
        state = "timed out" if t.timed_out else f"exited {t.exit_code}"
        parts += ["", f"### Tests: `{t.command}` {state}", "```", _tail(t.output.strip(), TEST_OUTPUT_CHARS), "```"]
    elif record.tests is not None:
        parts += ["", f"### Tests: `{record.tests.command}` passed"]
    if record.disputes:
        parts += ["", "### Your rejections (the reviewers' findings stand until the review approves)"]
        parts += [f"- {d.rejection.target}: {d.rejection.reason}" for d in record.disputes]
    return "\n".join(parts)


def conversation(task: str, context: RepoContext, exchanges: list[tuple[str, str]]) -> list[ChatMessage]:
    """System, task, then (author answer, feedback) pairs; the oldest pairs are dropped over HISTORY_CHARS
    (the task and the latest pair always stay)."""
    kept = list(exchanges)
    while len(kept) > 1 and sum(len(a) + len(b) for a, b in kept) > HISTORY_CHARS:
        kept.pop(0)
    messages = [ChatMessage(role="system", content=AUTHOR_SYSTEM_PROMPT),
                ChatMessage(role="user", content=task_message(task, context))]
    for answer, feedback in kept:
        messages += [ChatMessage(role="assistant", content=answer or "(no answer)"),
                     ChatMessage(role="user", content=feedback)]
    return messages
