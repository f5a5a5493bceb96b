"""`calora jobs`, `calora serve` and `calora worker` as a maintainer runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.jobs import ReviewJobSpec
from app.settings import Settings
from app.store import Store
from app.webhooks import Ignore
from reviewers.backends.factory import BackendSettings


@pytest.fixture()
def queue_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("CALORA_WEBHOOK_SECRET", "CALORA_JOB_RUNNER", "CALORA_APP_ID", "CALORA_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    monkeypatch.setenv("CALORA_DATABASE_URL", url)
    store = Store.from_url(url)
    store.enqueue(ReviewJobSpec(delivery_id="d-1", installation_id=1, owner="acme", repo="web", pull_number=7,
                                head_sha="0123456789abcdef" * 2 + "01234567", trigger="opened"))
    store.record_delivery("d-2", "pull_request_review", "submitted", Ignore(reason="event is not handled"))
    store.close()
    return url


def test_jobs_as_json_lists_jobs_deliveries_and_depth(queue_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["depth"]["queued"] == 1
    assert [(job["pr_key"], job["status"], job["trigger"]) for job in listed["jobs"]] == [("acme/web#7", "queued", "opened")]
    assert [(d["delivery_id"], d["outcome"], d["reason"]) for d in listed["deliveries"]] == [
        ("d-2", "ignored", "event is not handled")]


def test_jobs_as_a_table(queue_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--status", "queued"]) == 0
    out = capsys.readouterr().out
    assert "queue: queued 1, running 0" in out
    assert "acme/web#7" in out and "0123456789" in out and "event is not handled" in out


def test_serve_without_a_webhook_secret_says_so(queue_url: str, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALORA_JOB_RUNNER", "tests.app.crash_runner:review")
    assert main(["serve", "--port", "1"]) == 2
    assert "CALORA_WEBHOOK_SECRET is not set" in capsys.readouterr().err


def test_serve_without_the_apps_key_stops_before_it_listens_or_loads_a_model(
    queue_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALORA_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("CALORA_APP_ID", "42")
    monkeypatch.setenv("CALORA_PRIVATE_KEY_PATH", str(tmp_path / "missing.pem"))
    assert main(["serve", "--port", "1"]) == 2
    assert "cannot read the App's private key" in capsys.readouterr().err


def test_invalid_settings_are_reported_not_raised(queue_url: str, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALORA_MAX_ATTEMPTS", "zero")
    assert main(["jobs"]) == 2
    assert "max_attempts" in capsys.readouterr().err


def test_secrets_never_show_in_the_settings_repr() -> None:
    settings = Settings(webhook_secret="hunter2-webhook", reviewer=BackendSettings(openai_api_key="sk-hunter2"))
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_default_database_is_a_sqlite_file_in_the_working_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALORA_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().database_url == f"sqlite:///{tmp_path.resolve() / 'calora.sqlite'}"


def test_allowed_associations_come_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALORA_ALLOWED_ASSOCIATIONS", '["owner", "member"]')
    assert Settings().allowed_associations == frozenset({"OWNER", "MEMBER"})
