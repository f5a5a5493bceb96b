"""Fixtures of the console tests: a seeded database, the real app with the console, a real server."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed as seed_module

from app.console import mount_console
from app.console.settings import ConsoleSettings
from app.server import create_app
from app.settings import Settings
from reviewers.backends.factory import BackendSettings
from tests.loopback import serve_in_thread

TOKEN = "console-test-token: not a real one"


@dataclass
class SeededConsole:
    """A database seeded with reviews in every state, training runs and eval scores."""

    database_url: str
    reviews: dict[str, seed_module.SeededReview]
    runs_root: Path
    history: Path
    adapters: Path

    def settings(self) -> Settings:
        return Settings(
            webhook_secret="test-secret",
            database_url=self.database_url,
            github_api_url="https://api.github.com",
            reviewer=BackendSettings(backend="engine", adapters_dir=self.adapters),
        )

    def console_settings(self, token: str | None = None, **overrides: object) -> ConsoleSettings:
        values: dict[str, object] = {
            "console_token": token,
            "console_runs_dir": self.runs_root,
            "eval_history": self.history,
            "console_poll_seconds": 0.5,
        }
        values.update(overrides)
        return ConsoleSettings(**values)  # type: ignore[arg-type]

    def app(self, token: str | None = None, **overrides: object) -> FastAPI:
        """The app `calora serve --no-worker` builds, with the console mounted on it."""
        settings = self.settings()
        app = create_app(settings, run_worker=False)
        mount_console(app, settings, self.console_settings(token, **overrides))
        return app


def build_seeded(folder: Path) -> SeededConsole:
    url = f"sqlite:///{folder / 'calora.sqlite'}"
    reviews = seed_module.seed(url)
    runs_root = folder / "runs"
    history = folder / "history.sqlite"
    adapters = folder / "adapters"
    seed_module.seed_training(runs_root, history, adapters)
    return SeededConsole(
        database_url=url, reviews=reviews, runs_root=runs_root, history=history, adapters=adapters
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> SeededConsole:
    """Seeded once per module: tests here only read it (the live-update test seeds its own)."""
    return build_seeded(tmp_path_factory.mktemp("console"))




@pytest.fixture()
def serve() -> Iterator[Callable[[FastAPI], str]]:
    """Start servers on loopback for the test; all stop at its end."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_in_thread(app))
