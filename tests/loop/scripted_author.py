"""A scripted author model behind a real OpenAI-compatible `/v1/chat/completions` (served on loopback).

Each request takes the next scripted step: a text answer, or a delay longer than the client's timeout.
Every request body is kept, so tests can read what the author was told (the revision plan, git's error).
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse


@dataclass
class Step:
    """One scripted answer: `text` after `delay_s` seconds (a delay over the client's timeout = a timeout)."""

    text: str
    delay_s: float = 0.0


@dataclass
class ScriptedAuthor:
    steps: list[Step]
    requests: list[dict] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(body: dict) -> JSONResponse:
            self.requests.append(body)
            index = min(len(self.requests), len(self.steps)) - 1
            step = self.steps[index]
            if step.delay_s:
                await asyncio.sleep(step.delay_s)
            return JSONResponse({
                "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": step.text}}],
                "usage": {"prompt_tokens": sum(len(m["content"]) // 4 for m in body["messages"]),
                          "completion_tokens": len(step.text) // 4},
            })

        return app

    def user_messages(self, request: int) -> list[str]:
        return [m["content"] for m in self.requests[request]["messages"] if m["role"] == "user"]


def fenced(diff: str, before: str = "Here is the change.", after: str = "") -> str:
    """An answer as a model writes one: a sentence, the diff in a ```diff fence, maybe more lines."""
    return f"{before}\n\n```diff\n{textwrap.dedent(diff).lstrip()}```\n{after}"


DEFECTIVE = fenced("""\
    diff --git a/shop/db.py b/shop/db.py
    new file mode 100644
    --- /dev/null
    +++ b/shop/db.py
    @@ -0,0 +1,12 @@
    +\"\"\"Queries on the shop's users.\"\"\"
    +
    +import sqlite3
    +
    +
    +def find_user(conn: sqlite3.Connection, name: str) -> list[tuple]:
    +    query = f"SELECT id, name FROM users WHERE name = '{name}'"
    +    rows = []
    +    for row in conn.execute(query):
    +        if row[1]:
    +            rows.append(row)
    +    return rows
    """)

FIXED = fenced("""\
    diff --git a/shop/db.py b/shop/db.py
    new file mode 100644
    --- /dev/null
    +++ b/shop/db.py
    @@ -0,0 +1,11 @@
    +\"\"\"Queries on the shop's users.\"\"\"
    +
    +import sqlite3
    +
    +
    +def find_user(conn: sqlite3.Connection, name: str) -> list[tuple]:
    +    rows = []
    +    for row in conn.execute("SELECT id, name FROM users WHERE name = ?", (name,)):
    +        if row[1]:
    +            rows.append(row)
    +    return rows
    """, before="Fixed: the query takes a parameter now.",
    after="REJECT PERF401: the explicit loop reads better here and the list is short.")

TASK = "Add shop/db.py with find_user(conn, name) returning the (id, name) rows of users with that name."


def make_repo(folder: Path) -> Path:
    """A small real repository: a package, a test, one commit."""
    repo = folder / "shop-repo"
    (repo / "shop").mkdir(parents=True)
    (repo / "shop" / "__init__.py").write_text('"""A tiny shop."""\n')
    (repo / "shop" / "prices.py").write_text(
        '"""Prices."""\n\n\ndef with_tax(cents: int, rate: float = 0.2) -> int:\n'
        '    return round(cents * (1 + rate))\n')
    (repo / "README.md").write_text("# shop\n\nA tiny shop for the loop's tests.\n")
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "initial"],
                   check=True)
    return repo


def git_status(repo: Path) -> str:
    """`git status --porcelain` of the user's working tree, untracked files included."""
    return subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
                          capture_output=True, text=True, check=True).stdout
