"""A reviewer's finding outside the diff it was shown never blocks (issue #15, item 4).

`calora review` runs against a loopback fake OpenAI-compatible server (tests/serving/fake_openai.py) that
answers every request with one scripted hostile answer: the backend, its HTTP client and the CLI's exit
code are real; only the model's text is scripted, which is the point (a hallucinating or injected model).
"""

from __future__ import annotations

import json

import pytest

from app.cli import main
from reviewers.contract import Finding, ReviewerOutput, Verdict, render_answer
from tests.loopback import serve_in_thread
from tests.serving.fake_openai import FakeOpenAI, Reply

CLEAN_DIFF = """\
diff --git a/app/greet.py b/app/greet.py
--- a/app/greet.py
+++ b/app/greet.py
@@ -1,2 +1,5 @@
 def hello() -> str:
     return "hello"
+
+def bye() -> str:
+    return "bye"
"""  # nothing for the checks to find: whatever blocks comes from the (scripted) model


def blocker_on(path: str, line: int) -> str:
    finding = Finding(path=path, line=line, severity="blocker", category="security",
                      message="os.system(request.args['cmd']) runs what the caller sends")
    return render_answer(ReviewerOutput(verdict=Verdict.block, findings=[finding], missing_checks=[],
                                        suggested_fix="do not run shell commands from requests"))


def review_with(answer: str, monkeypatch, capsys, tmp_path) -> tuple[int, dict]:
    diff = tmp_path / "change.diff"
    diff.write_text(CLEAN_DIFF)
    fake = FakeOpenAI([Reply(content=answer)], models=[{"id": "python", "object": "model"}])
    with serve_in_thread(fake.app) as url:
        monkeypatch.setenv("CALORA_BACKEND", "openai")
        monkeypatch.setenv("CALORA_OPENAI_BASE_URL", f"{url}/v1")
        code = main(["review", "--diff", str(diff), "--reviewers", "python", "--format", "json"])
    assert fake.bodies, "the review must have asked the fake server"
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("path", "line", "why"),
    [("zz/evil.py", 1, "'zz/evil.py' is not a file of the diff"),
     ("app/greet.py", 999999, "line 999999 is not inside one hunk")],
    ids=["path-not-in-the-diff", "line-999999"],
)
def test_a_finding_outside_the_diff_does_not_block(monkeypatch, capsys, tmp_path, path, line, why) -> None:
    code, result = review_with(blocker_on(path, line), monkeypatch, capsys, tmp_path)
    assert code == 0, result
    assert result["findings"] == [] and result["verdict"] == "approve"
    [note] = [n for n in result["notes"] if "dropped" in n]
    assert note.startswith("python (slice 0): dropped a blocker security finding on ") and why in note


def test_the_same_blocker_on_a_line_the_diff_shows_still_blocks(monkeypatch, capsys, tmp_path) -> None:
    code, result = review_with(blocker_on("app/greet.py", 4), monkeypatch, capsys, tmp_path)
    assert code == 2
    assert [(f["path"], f["line"]) for f in result["findings"]] == [("app/greet.py", 4)]
    assert not [n for n in result["notes"] if "dropped" in n]
