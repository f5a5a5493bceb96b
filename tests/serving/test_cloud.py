"""Cloud fallback: off by default; when configured, only reviewers without a local adapter go out, and
the caller is told exactly what left the machine."""

from __future__ import annotations

import json

import pytest

from reviewers.backends.base import CodeEgress, ReviewerFailure, describe_egress, endpoint_of
from reviewers.backends.cloud import CloudConfigError, CloudFallbackBackend
from reviewers.backends.factory import BackendSettings, make_backend
from reviewers.backends.openai_backend import OpenAIBackend
from reviewers.contract import ReviewerOutput, ReviewRequest
from reviewers.engine.backend import EngineBackend
from tests.serving.conftest import serving
from tests.serving.fake_openai import FakeOpenAI, Reply


@pytest.fixture
def slices(real_diffs) -> list[ReviewRequest]:
    diff = real_diffs[6].read_text(errors="replace")[:500]
    return [ReviewRequest(reviewer=name, diff=diff) for name in ("sql", "python", "docker_ci")]


@pytest.fixture
def local_env(monkeypatch, reviewer_server):
    monkeypatch.setenv("CALORA_BACKEND", "openai")
    monkeypatch.setenv("CALORA_OPENAI_BASE_URL", f"{reviewer_server}/v1")
    monkeypatch.setenv("CALORA_MAX_NEW_TOKENS", "64")
    monkeypatch.delenv("CALORA_CLOUD_REVIEWERS", raising=False)
    return monkeypatch


def _cloud_config(url: str) -> str:
    entry = {"base_url": f"{url}/v1", "model": "gpt-test", "api_key_env": "TEST_CLOUD_KEY"}
    return json.dumps({"docker_ci": entry, "python": entry})


def test_off_by_default_nothing_leaves(local_env, slices):
    fake = FakeOpenAI()
    with serving(fake.app):
        backend = make_backend(BackendSettings())
        assert isinstance(backend, OpenAIBackend)  # no wrapper at all
        answered = backend.answer(slices)
    assert len(answered.results) == 3 and answered.egress == []
    assert fake.bodies == []


def test_on_only_the_reviewer_without_a_local_adapter_goes_to_the_cloud(local_env, slices):
    fake = FakeOpenAI()
    with serving(fake.app) as url:
        local_env.setenv("TEST_CLOUD_KEY", "sk-cloud")
        local_env.setenv("CALORA_CLOUD_REVIEWERS", _cloud_config(url))
        backend = make_backend(BackendSettings())
        assert isinstance(backend, CloudFallbackBackend)
        answered = backend.answer(slices)
        answers, egress = answered.results, answered.egress
    # python is configured for the cloud too, but it has a local adapter: it stays here.
    assert [b["model"] for b in fake.bodies] == ["gpt-test"]
    assert "docker_ci reviewer" in fake.bodies[0]["messages"][0]["content"]
    assert fake.headers[0]["authorization"] == "Bearer sk-cloud"
    assert egress == [CodeEgress(reviewer="docker_ci", endpoint=endpoint_of(url), model="gpt-test", requests=1)]
    assert answers[2].findings[0].message == "scripted finding from the fake server"
    # sql and python were answered by the local server (the random model's answers, closed at the budget)
    assert all(not isinstance(a, ReviewerFailure) for a in answers[:2])
    assert all(f.message != "scripted finding from the fake server" for a in answers[:2] for f in a.findings)
    assert backend.review(slices[:2]) and len(fake.bodies) == 1  # local-only batches send nothing


def test_a_failing_cloud_still_reports_that_code_left(local_env, slices):
    fake = FakeOpenAI([Reply(status=400)])
    with serving(fake.app) as url:
        local_env.setenv("TEST_CLOUD_KEY", "sk-cloud")
        local_env.setenv("CALORA_CLOUD_REVIEWERS", _cloud_config(url))
        answered = make_backend(BackendSettings()).answer(slices)
        answers, egress = answered.results, answered.egress
    assert isinstance(answers[2], ReviewerFailure) and "cloud reviewer" in answers[2].message
    assert isinstance(answers[0], ReviewerOutput)  # the local answer (closed at the budget), unaffected
    assert [e.reviewer for e in egress] == ["docker_ci"]


def test_a_missing_api_key_variable_is_a_clear_error(local_env):
    local_env.delenv("TEST_CLOUD_KEY", raising=False)
    local_env.setenv("CALORA_CLOUD_REVIEWERS", _cloud_config("https://cloud.example"))
    with pytest.raises(CloudConfigError, match="TEST_CLOUD_KEY"):
        make_backend(BackendSettings())


def test_the_egress_sentence_names_reviewer_endpoint_and_model():
    text = describe_egress([CodeEgress(reviewer="docker_ci", endpoint="https://api.example.com", model="m1",
                                       requests=2)])
    assert text.startswith("Code left this machine: 2 docker_ci slice(s) to https://api.example.com (model m1)")
    assert describe_egress([]) == ""


def test_endpoints_drop_paths_and_credentials():
    assert endpoint_of("https://user:secret@api.example.com:8443/v1?key=x") == "https://api.example.com:8443"


def test_local_adapters_are_read_from_the_engine_itself(engine):
    backend = CloudFallbackBackend(EngineBackend(engine), {}, remotes={})
    assert backend.has_adapter("python") and not backend.has_adapter("docker_ci")
    assert not backend.goes_to_cloud("python")
