"""Every CALORA_* variable is read through the settings tree (`reviewers.settings.CaloraSettings`), so one
written in `.env` reaches the code that uses it exactly as one in the environment does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eval.history import ScoreHistory, default_history_path
from reviewers.checks import sandbox
from reviewers.checks.tools import tools_cache
from reviewers.models import cache_dir, model_dir, resolve_base_model


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory and no CALORA_* variable in the environment."""
    for name in list(os.environ):
        if name.upper().startswith("CALORA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def dot_env(folder: Path, **values: object) -> None:
    (folder / ".env").write_text("".join(f"CALORA_{k.upper()}={v}\n" for k, v in values.items()), encoding="utf-8")


def test_cache_dir_in_dot_env_is_where_models_are_cached(project: Path) -> None:
    dot_env(project, cache_dir=project / "cache")
    assert cache_dir() == project / "cache" / "models"
    assert model_dir("smollm2") == project / "cache" / "models" / "smollm2"


def test_eval_history_in_dot_env_is_the_history_eval_and_the_console_use(project: Path) -> None:
    from app.console.settings import ConsoleSettings

    dot_env(project, eval_history=project / "scores" / "h.sqlite")
    assert default_history_path() == project / "scores" / "h.sqlite"
    assert ScoreHistory().path == project / "scores" / "h.sqlite"
    assert (project / "scores" / "h.sqlite").is_file()
    assert ConsoleSettings().eval_history == project / "scores" / "h.sqlite"


def test_eval_history_defaults_to_the_eval_folder(project: Path) -> None:
    from app.console.settings import ConsoleSettings

    assert default_history_path() == ConsoleSettings().eval_history == Path("eval/history.sqlite")


def test_base_model_in_dot_env_is_the_base_model_every_command_resolves(project: Path) -> None:
    from reviewers.backends.factory import BackendSettings

    folder = project / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    dot_env(project, base_model=folder)
    assert resolve_base_model().source == str(folder)
    assert BackendSettings().base_model == str(folder)


def test_tools_dir_in_dot_env_is_where_the_analyzers_are_installed(project: Path) -> None:
    dot_env(project, tools_dir=project / "tools")
    assert tools_cache() == project / "tools"


def test_checks_no_unshare_in_dot_env_drops_the_network_namespace(project: Path) -> None:
    sandbox.network_isolation.cache_clear()
    try:
        if not sandbox.network_isolation():
            pytest.skip("this system gives no unprivileged network namespace to drop")
        dot_env(project, checks_no_unshare="1")
        sandbox.network_isolation.cache_clear()
        assert sandbox.network_isolation() == []
    finally:
        sandbox.network_isolation.cache_clear()


def test_the_environment_wins_over_dot_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dot_env(project, cache_dir=project / "from-file", tools_dir=project / "from-file")
    monkeypatch.setenv("CALORA_CACHE_DIR", str(project / "from-env"))
    monkeypatch.setenv("CALORA_TOOLS_DIR", str(project / "from-env"))
    assert cache_dir() == project / "from-env" / "models" and tools_cache() == project / "from-env"
