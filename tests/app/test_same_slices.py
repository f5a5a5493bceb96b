"""The App and `calora review` cut the same diff into the same slices for the same backend.

Both slice with the backend's own `count_tokens`: here the tiny BPE tokenizer of tests/conftest.py,
which counts a diff quite differently from the 3.5-characters-per-token estimate the App used before.
The App path runs `run_review` against the fake GitHub on loopback; the CLI path runs `calora review
--diff` on the same real diff. The backend is scripted (no model): what is compared is what it was asked.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from app.cli import main
from app.jobs import ReviewJobSpec
from app.review_job import ReviewContext, run_review
from app.settings import Settings
from reviewers.slicing import SliceLimits, approx_token_count
from tests.app.github_env import (  # noqa: F401 - fixtures
    APP_ID,
    BOT_LOGIN,
    app_clients,
    app_key_pair,
    fake_github,
    read_diff,
    sleeper,
)
from tests.app.scripted_backend import ScriptedBackend

BUDGET = 400  # small, so that how tokens are counted decides where slices are cut


@dataclass
class TokenizerBackend(ScriptedBackend):
    """The scripted backend, counting tokens with a real tokenizer as a model backend would."""

    tokenizer: Any = None

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def asked(backend: ScriptedBackend) -> list[tuple[str, str]]:
    return [(r.reviewer, r.diff) for r in backend.requests]


def test_the_app_and_the_cli_slice_a_diff_alike(fake_github, app_clients, shared_dir, tiny_tokenizer, tmp_path,
                                                 monkeypatch, capsys):
    diff = read_diff(shared_dir, "011-")
    app_backend = TokenizerBackend(tokenizer=tiny_tokenizer)
    cli_backend = TokenizerBackend(tokenizer=tiny_tokenizer)
    assert app_backend.count_tokens(diff) != approx_token_count(diff)  # the counters really differ

    fake_github.add_pull("acme", "web", 42, diff, head_sha="1" * 40, title="Cascade delete")
    settings = Settings(app_id=APP_ID, bot_login=BOT_LOGIN, webhook_secret="webhook-secret-value-123",
                        database_url="sqlite://")
    context = ReviewContext(clients=app_clients.for_installation, backend=app_backend, settings=settings,
                            limits=SliceLimits(budget_tokens=BUDGET))
    spec = ReviewJobSpec(delivery_id="d-1", installation_id=7, owner="acme", repo="web", pull_number=42,
                         head_sha="1" * 40, trigger="opened")
    outcome = asyncio.run(run_review(spec, context))
    assert outcome.status == "reviewed"

    from reviewers import commands

    monkeypatch.setattr(commands, "_make_backend", lambda args, progress: cli_backend)
    diff_file = tmp_path / "pr.diff"
    diff_file.write_text(diff, encoding="utf-8")
    main(["review", "--diff", str(diff_file), "--budget", str(BUDGET), "--format", "json"])
    capsys.readouterr()

    assert len(asked(app_backend)) > 3  # the budget really cut the diff
    assert asked(app_backend) == asked(cli_backend)
