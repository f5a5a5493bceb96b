"""From "create the App from the manifest" to "first review posted", against the fake GitHub.

Also checks that app.yml asks for exactly the permissions and events the bot uses, and that the
deploy files agree with the settings the app reads.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError

from app import review_job
from app.jobs import ReviewJobSpec
from app.review_job import build_context, run_review
from app.settings import MissingSettingError, Settings
from deploy.create_app import exchange_code, form_page, load_manifest, write_credentials
from reviewers.backends.factory import BackendSettings
from reviewers.contract import Category, Severity
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import app_key_pair, fake_github, read_diff  # noqa: F401 - fixtures
from tests.app.scripted_backend import ScriptedBackend, ScriptedFinding

ROOT = Path(__file__).resolve().parents[2]
MODELS = "backend/app/models.py"


def test_manifest_asks_for_what_the_bot_uses_and_no_more():
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["default_permissions"] == {
        "checks": "write", "pull_requests": "write", "contents": "read", "issues": "write", "metadata": "read",
    }
    assert set(manifest["default_events"]) == {"pull_request", "issue_comment", "check_run", "check_suite"}
    assert manifest["hook_attributes"]["url"].endswith("/webhooks/github")
    assert manifest["public"] is False


def test_manifest_form_fills_in_this_deployments_urls():
    manifest = load_manifest(ROOT / "app.yml", "https://bot.example.org/webhooks/github",
                             "http://127.0.0.1:8765/callback", name="Calora at Example")
    assert manifest["hook_attributes"] == {"url": "https://bot.example.org/webhooks/github", "active": True}
    page = form_page(manifest, "st4te", org="example")
    assert 'action="https://github.com/organizations/example/settings/apps/new?state=st4te"' in page
    assert "&quot;Calora at Example&quot;" in page and "<script" not in page


def test_created_app_reviews_its_first_pull_request(fake_github: FakeGitHub, app_key_pair, tmp_path, shared_dir,
                                                    monkeypatch):
    fake_github.manifest_app = {"code": "one-time-code", "slug": "calora-review", "name": "Calora Review",
                                "html_url": "https://github.com/apps/calora-review", "pem": app_key_pair[0]}
    creds = exchange_code("one-time-code", fake_github.base_url)
    with pytest.raises(RuntimeError, match="works once"):
        exchange_code("one-time-code", fake_github.base_url)
    key_file, env_file = write_credentials(creds, tmp_path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(env_file.stat().st_mode) == 0o600

    settings = Settings(_env_file=env_file, github_api_url=fake_github.base_url, database_url="sqlite://")
    assert settings.app_id == fake_github.app_id and settings.bot_login == "calora-review[bot]"
    assert "PRIVATE KEY" not in repr(settings) and creds.webhook_secret.get_secret_value() not in repr(settings)

    backend = ScriptedBackend([ScriptedFinding("python", MODELS, 46, Severity.major, Category.correctness,
                                               "Add passive_deletes=True or every child row loads first.")])
    monkeypatch.setattr(review_job, "make_reviewer_backend", lambda _settings: backend)
    ctx = build_context(settings)
    fake_github.add_pull("octo", "shop", 1, read_diff(shared_dir, "011-"), head_sha="f" * 40)
    spec = ReviewJobSpec(delivery_id="first", installation_id=3, owner="octo", repo="shop", pull_number=1,
                         head_sha="f" * 40, trigger="opened")
    outcome = asyncio.run(run_review(spec, ctx))
    assert outcome.status == "reviewed" and outcome.review_id is not None
    assert [(c["path"], c["line"]) for c in fake_github.reviews[0]["comments"]] == [(MODELS, 46)]


def test_build_context_explains_missing_or_bad_credentials(tmp_path):
    with pytest.raises(MissingSettingError, match="CALORA_APP_ID"):
        build_context(Settings(app_id=None, database_url="sqlite://"))
    with pytest.raises(MissingSettingError, match="CALORA_PRIVATE_KEY_PATH"):
        build_context(Settings(app_id=1, private_key_path=None, database_url="sqlite://"))
    with pytest.raises(MissingSettingError, match="cannot read the App's private key"):
        build_context(Settings(app_id=1, private_key_path=tmp_path / "missing.pem", database_url="sqlite://"))
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    with pytest.raises(MissingSettingError, match="does not look like a PEM private key"):
        build_context(Settings(app_id=1, private_key_path=not_a_key, database_url="sqlite://"))


def test_scripted_backend_setting_is_refused_in_production(monkeypatch):
    monkeypatch.setenv("CALORA_BACKEND", "scripted")  # the scripted backend exists only in the tests
    with pytest.raises(ValidationError, match="backend"):
        Settings(database_url="sqlite://")


def test_deploy_files_use_settings_the_app_reads():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yml").read_text())
    names = set(Settings.model_fields) | set(BackendSettings.model_fields)
    for service in ("app", "worker"):
        env = compose["services"][service].get("environment", {})
        for key in env:
            assert key.startswith("CALORA_") and key.removeprefix("CALORA_").lower() in names, key
    assert {"app", "worker", "postgres", "reviewer"} <= set(compose["services"])
    unit = (ROOT / "deploy" / "calora.service").read_text()
    assert "ExecStart=" in unit and "calora serve" in unit and "EnvironmentFile=" in unit


def test_exchange_reports_githubs_refusal():
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "Not Found"})

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client, pytest.raises(RuntimeError) as err:
        exchange_code("stale", "https://api.github.com", client)
    assert "HTTP 404" in str(err.value) and "run the script again" in str(err.value)
