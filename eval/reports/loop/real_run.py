"""The documented real run of `calora loop` (issue 17): a real author model on one small task.

    python eval/reports/loop/real_run.py --base-model NAME --out eval/reports/loop/NAME    # e.g. the default model
    python eval/reports/loop/real_run.py --base-model ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
        --out eval/reports/loop/smollm2-135m-instruct
    python eval/reports/loop/real_run.py --scripted --out eval/reports/loop/scripted

It makes a small real repository in a temporary folder (a `textstats` package with a pytest test, one
commit), serves the author model with `calora reviewers serve` (OpenAI-compatible; one thread, so that
the 2-core machine stays usable), runs `calora loop` against it with the test command, and writes the
transcripts (the prompt, each round's answer, what git and the review said, the feedback) and the summary
from the store into `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TASK = ("Add a function `word_count(text: str) -> int` to textstats/core.py that returns the number of "
        "whitespace-separated words in `text` (0 for an empty string), and a test for it in tests/test_core.py.")

FILES = {
    "textstats/__init__.py": '"""Small text statistics."""\n',
    "textstats/core.py": (
        '"""Counting things in text."""\n\n\n'
        "def char_count(text: str) -> int:\n"
        '    """The number of characters in `text`, spaces included."""\n'
        "    return len(text)\n"
    ),
    "tests/test_core.py": (
        "from textstats.core import char_count\n\n\n"
        "def test_char_count_counts_spaces() -> None:\n"
        '    assert char_count("a b") == 3\n'
    ),
    "README.md": "# textstats\n\nSmall text statistics. Run the tests with `python -m pytest`.\n",
}


def make_repo(folder: Path) -> Path:
    repo = folder / "textstats"
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "-c", "user.name=demo", "-c", "user.email=demo@example.com", "commit", "-qm",
                    "textstats: char_count"], check=True)
    return repo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen, limit_s: float = 900) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the author server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise SystemExit("the author server did not become ready")


def write_transcripts(db: str, loop_id: int, out: Path, messages: list[dict]) -> None:
    from sqlalchemy import create_engine  # eval/ never imports the App: reading needs no store settings

    from loop.records import LoopReader

    detail = LoopReader(create_engine(db)).get_loop(loop_id)
    assert detail is not None
    (out / "prompt.md").write_text("\n\n".join(f"## {m['role']}\n\n{m['content']}" for m in messages) + "\n")
    for r in detail.rounds_recorded:
        parts = [f"# Round {r.number}: {r.status}", "", r.message, "",
                 (f"Author: {r.author.prompt_tokens} prompt + {r.author.completion_tokens} completion tokens, "
                  f"{r.author.seconds:.1f} s (finish: {r.author.finish_reason}); round {r.seconds:.1f} s."), "",
                 "## The author's answer (verbatim)", "", "````text", r.author.text or f"(none: {r.author.error})",
                 "````"]
        if r.problems:
            parts += ["", "## Why it was not applied", ""] + [f"- {p}" for p in r.problems]
        if r.check_output:
            parts += ["", "## git apply --check", "", "```", r.check_output, "```"]
        if r.tests:
            parts += ["", f"## Tests: `{r.tests.command}` (exit {r.tests.exit_code})", "", "```", r.tests.output, "```"]
        if r.review:
            parts += ["", f"## Review: {r.review.result.decision}", ""]
            parts += [f"- {f.path}:{f.line} [{f.severity.value}] {', '.join(f.raised_by)}: {f.message}"
                      for f in r.review.result.findings] or ["- no findings"]
        parts += ["", "## Feedback sent to the author", "", "````text", r.feedback, "````", ""]
        (out / f"round-{r.number}.md").write_text("\n".join(parts))
    (out / "summary.json").write_text(detail.summary.model_dump_json(indent=2) + "\n" if detail.summary else "{}\n")


def scripted_run(out: Path) -> int:
    """The same loop with the tests' scripted author (a defective patch, then a fixed one) on loopback."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.loop.scripted_author import DEFECTIVE, FIXED, ScriptedAuthor, Step
    from tests.loop.scripted_author import TASK as SHOP_TASK
    from tests.loop.scripted_author import make_repo as make_shop_repo
    from tests.loopback import serve_in_thread

    work = Path(tempfile.mkdtemp(prefix="calora-loop-scripted-"))
    repo = make_shop_repo(work)
    db = f"sqlite:///{work / 'loop.sqlite'}"
    author = ScriptedAuthor([Step(DEFECTIVE), Step(FIXED)])
    with serve_in_thread(author.app()) as url:
        loop = subprocess.run(
            [sys.executable, "-m", "app.cli", "loop", "--task", SHOP_TASK, "--repo", str(repo), "--author-url",
             f"{url}/v1", "--author-model", "scripted", "--test-cmd", f"{sys.executable} -c 'import shop.db'",
             "--backend", "none", "--format", "json", "--database-url", db],
            capture_output=True, text=True, check=False,
        )
    summary = json.loads(loop.stdout)
    write_transcripts(db, summary["loop_id"], out, author.requests[0]["messages"])
    print(json.dumps(summary["rounds"], indent=2))
    return loop.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripted", action="store_true", help="the tests' scripted author instead of a model")
    parser.add_argument("--base-model")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-rounds", type=int, default=3)
    parser.add_argument("--author-max-tokens", type=int, default=400)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scripted:
        return scripted_run(args.out)
    if not args.base_model:
        parser.error("--base-model is required (or --scripted)")
    work = Path(tempfile.mkdtemp(prefix="calora-loop-real-"))
    repo = make_repo(work)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "reviewers", "serve", "--base-model", args.base_model, "--port", str(port),
         "--served-model-name", "author", "--device", "cpu", "--max-batch", "1", "--max-seq-len", "4096",
         "--timeout", "1800", "--max-new-tokens", str(args.author_max_tokens)],
        env=env, stdout=(args.out / "server.log").open("w"), stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(url, server)
        loaded = time.perf_counter() - started
        db = f"sqlite:///{work / 'loop.sqlite'}"
        loop = subprocess.run(
            [sys.executable, "-m", "app.cli", "loop", "--task", TASK, "--repo", str(repo), "--author-url",
             f"{url}/v1", "--author-model", "author", "--author-max-tokens", str(args.author_max_tokens),
             "--author-timeout", "1800", "--max-rounds", str(args.max_rounds), "--test-cmd",
             f"{sys.executable} -m pytest -q -p no:cacheprovider", "--test-timeout", "120", "--backend", "none",
             "--format", "json", "--database-url", db],
            env=env, capture_output=True, text=True, check=False,
        )
        (args.out / "loop.stderr.log").write_text(loop.stderr)
        summary = json.loads(loop.stdout)
        from loop.prompts import conversation
        from loop.worktree import ScratchWorktree

        context = ScratchWorktree(repo, repo, "main", "HEAD").context(TASK, 40_000)
        messages = [m.model_dump() for m in conversation(TASK, context, [])]
        write_transcripts(db, summary["loop_id"], args.out, messages)
        (args.out / "run.json").write_text(json.dumps({
            "base_model": args.base_model, "exit_code": loop.returncode, "server_ready_s": round(loaded, 1),
            "wall_s": round(time.perf_counter() - started, 1), "approved": summary["approved"],
            "stop_reason": summary["stop_reason"], "rounds": [(r["status"], r["message"]) for r in summary["rounds"]],
        }, indent=2) + "\n")
        print(json.dumps(summary["rounds"], indent=2))
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
