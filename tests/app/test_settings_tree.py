"""One settings tree: every settings class reads the environment and `.env` by the same rule, and the
worker's defaults are the App settings' defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.console.settings import ConsoleSettings
from app.review_job import build_context
from app.settings import Settings
from app.worker import WorkerConfig
from reviewers.backends.factory import BackendSettings
from reviewers.backends.openai_backend import OpenAIBackend
from tests.app.github_env import app_key_pair  # noqa: F401 - fixture


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CALORA_* variable in the environment; the working directory is an empty folder."""
    for name in list(os.environ):
        if name.upper().startswith("CALORA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_env(folder: Path, key_file: Path) -> Path:
    env = folder / ".env"
    env.write_text(
        "CALORA_APP_ID=12345\n"
        f"CALORA_PRIVATE_KEY_PATH={key_file}\n"
        "CALORA_DATABASE_URL=sqlite://\n"
        "CALORA_BACKEND=openai\n"
        "CALORA_OPENAI_BASE_URL=http://127.0.0.1:9/v1\n"
        "CALORA_MAX_NEW_TOKENS=200\n"
        "CALORA_CONSOLE_POLL_SECONDS=7\n",
        encoding="utf-8",
    )
    return env


def test_calora_backend_in_dot_env_reaches_the_apps_worker(bare_environment, app_key_pair):  # noqa: F811
    key_file = bare_environment / "app.pem"
    key_file.write_text(app_key_pair[0], encoding="utf-8")
    write_env(bare_environment, key_file)

    settings = Settings()  # what `calora serve` and `calora worker` read
    assert settings.app_id == 12345
    assert settings.reviewer.backend == "openai" and settings.reviewer.max_new_tokens == 200
    context = build_context(settings)  # what the worker reviews with (app.worker.load_job_hooks)
    assert isinstance(context.backend, OpenAIBackend)
    assert context.backend.base_url == "http://127.0.0.1:9/v1" and context.backend.max_tokens == 200


def test_every_settings_class_reads_the_same_dot_env(bare_environment, monkeypatch):
    env = write_env(bare_environment, bare_environment / "app.pem")
    assert BackendSettings().backend == "openai"  # `calora review`
    assert ConsoleSettings().console_poll_seconds == 7
    elsewhere = bare_environment / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # an explicit file reaches the nested reviewer settings too
    assert Settings().reviewer.backend == "engine"
    assert Settings(_env_file=env).reviewer.backend == "openai"


def test_the_environment_wins_over_dot_env(bare_environment, monkeypatch):
    write_env(bare_environment, bare_environment / "app.pem")
    monkeypatch.setenv("CALORA_BACKEND", "engine")
    assert Settings().reviewer.backend == "engine" and BackendSettings().backend == "engine"


def test_the_workers_defaults_are_the_settings_defaults(bare_environment):
    assert WorkerConfig() == WorkerConfig.from_settings(Settings())
