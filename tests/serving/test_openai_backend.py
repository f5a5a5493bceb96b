"""The OpenAI-compatible backend against real HTTP servers on loopback: our reviewer server (real engine,
tiny random model) and a scripted fake server for faults (429, 5xx, garbage, timeouts)."""

from __future__ import annotations

import socket

import pytest

from reviewers.backends.base import ReviewerFailure
from reviewers.backends.factory import BackendSettings, make_backend
from reviewers.backends.openai_backend import OpenAIBackend, OpenAIBackendError, retry_after_seconds
from reviewers.contract import ReviewerOutput, ReviewRequest, reviewer_output_schema
from reviewers.prompt import render_messages
from tests.serving.conftest import BASE_NAME, serving
from tests.serving.fake_openai import SCRIPTED_ANSWER, FakeOpenAI, Reply


@pytest.fixture
def slices(real_diffs) -> list[ReviewRequest]:
    diff = real_diffs[5].read_text(errors="replace")[:500]
    return [ReviewRequest(reviewer=name, diff=diff, task="tidy the loader") for name in ("sql", "python", "docker_ci")]


class Sleeps(list):
    """The injected sleeper: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- against our reviewer server (the real engine) ---------------------------------------------


def test_reviews_through_our_server_come_back_valid_and_in_order(reviewer_server, slices):
    backend = OpenAIBackend(f"{reviewer_server}/v1", max_tokens=64, accept_truncated=True)
    results = backend.review(slices)
    assert len(results) == 3
    assert all(isinstance(r, ReviewerOutput) for r in results), results
    assert backend.has_adapter("python") and backend.has_adapter("sql")
    assert not backend.has_adapter("docker_ci") and not backend.has_adapter(BASE_NAME)
    assert backend.model_for("docker_ci") == BASE_NAME  # no adapter: the base model answers


def test_an_answer_our_server_closed_at_the_budget_is_an_answer(reviewer_server, slices):
    """finish_reason "length" with a whole JSON object: the server's grammar closed it (read_answer rule 1)."""
    [result] = OpenAIBackend(f"{reviewer_server}/v1", max_tokens=64).review(slices[1:2])
    assert isinstance(result, ReviewerOutput)


def test_without_a_schema_the_random_model_breaks_the_contract_and_says_so(reviewer_server, slices):
    backend = OpenAIBackend(f"{reviewer_server}/v1", max_tokens=16, schema_mode="none", accept_truncated=True)
    [result] = backend.review(slices[:1])
    assert isinstance(result, ReviewerFailure)
    assert result.reviewer == "sql"
    assert result.message.startswith("answer broke the contract")
    assert result.raw


def test_make_backend_builds_it_from_calora_variables(monkeypatch, reviewer_server, slices):
    monkeypatch.setenv("CALORA_BACKEND", "openai")
    monkeypatch.setenv("CALORA_OPENAI_BASE_URL", f"{reviewer_server}/v1")
    monkeypatch.setenv("CALORA_OPENAI_MODELS", '{"docker_ci": "sql"}')
    monkeypatch.setenv("CALORA_MAX_NEW_TOKENS", "64")
    backend = make_backend(BackendSettings())
    assert isinstance(backend, OpenAIBackend)
    assert backend.model_for("docker_ci") == "sql" and backend.max_tokens == 64
    [result] = backend.review(slices[2:])  # the random model's answer, closed at 64 tokens: the server answered
    assert isinstance(result, ReviewerOutput)


def test_a_missing_base_url_is_a_clear_error():
    with pytest.raises(OpenAIBackendError, match="CALORA_OPENAI_BASE_URL"):
        make_backend(BackendSettings(backend="openai"))


# --- against the scripted fake -----------------------------------------------------------------


def _backend(url: str, sleeps: Sleeps | None = None, **options) -> OpenAIBackend:
    return OpenAIBackend(f"{url}/v1", sleep=sleeps if sleeps is not None else Sleeps(), **options)


def test_the_request_carries_the_prompt_the_schema_the_model_and_the_key(slices):
    fake = FakeOpenAI()
    with serving(fake.app) as url:
        backend = _backend(url, api_key="sk-test", models={"sql": "sql-v2"}, max_tokens=99,
                           extra_body={"*": {"seed": 7}, "sql": {"lora": [{"id": 1, "scale": 1.0}]}})
        result = backend.review(slices[:1])[0]
    assert isinstance(result, ReviewerOutput) and result.findings[0].line == 3
    [body] = fake.bodies
    assert body["model"] == "sql-v2"
    assert body["messages"] == [m.model_dump() for m in render_messages(slices[0])]
    assert body["max_tokens"] == 99 and body["temperature"] == 0 and body["stream"] is False
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == reviewer_output_schema()
    assert body["seed"] == 7 and body["lora"] == [{"id": 1, "scale": 1.0}]
    assert fake.headers[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("mode, key, value", [
    ("vllm_guided_json", "guided_json", reviewer_output_schema()),
    ("vllm_structured_outputs", "structured_outputs", {"json": reviewer_output_schema()}),
    ("json_object", "response_format", {"type": "json_object"}),
])
def test_schema_modes_use_each_servers_spelling(slices, mode, key, value):
    fake = FakeOpenAI()
    with serving(fake.app) as url:
        _backend(url, schema_mode=mode).review(slices[:1])
    assert fake.bodies[0][key] == value
    if mode != "json_object":
        assert "response_format" not in fake.bodies[0]


def test_429_waits_for_retry_after_then_succeeds(slices):
    fake = FakeOpenAI([Reply(status=429, headers={"Retry-After": "2"}), Reply()])
    sleeps = Sleeps()
    with serving(fake.app) as url:
        [result] = _backend(url, sleeps).review(slices[:1])
    assert isinstance(result, ReviewerOutput)
    assert sleeps == [2.0]
    assert len(fake.bodies) == 2


def test_retry_after_is_capped(slices):
    fake = FakeOpenAI([Reply(status=429, headers={"Retry-After": "3600"}), Reply()])
    sleeps = Sleeps()
    with serving(fake.app) as url:
        [result] = _backend(url, sleeps, max_retry_wait_s=5).review(slices[:1])
    assert isinstance(result, ReviewerOutput) and sleeps == [5.0]


def test_500_is_retried_with_backoff_then_succeeds(slices):
    fake = FakeOpenAI([Reply(status=500), Reply(status=503), Reply()])
    sleeps = Sleeps()
    with serving(fake.app) as url:
        [result] = _backend(url, sleeps).review(slices[:1])
    assert isinstance(result, ReviewerOutput)
    assert sleeps == [0.5, 1.0]


def test_a_server_that_keeps_failing_gives_a_failure_after_max_attempts(slices):
    fake = FakeOpenAI([Reply(status=502)])
    with serving(fake.app) as url:
        results = _backend(url, max_attempts=3).review(slices[:2])
    assert all(isinstance(r, ReviewerFailure) for r in results)
    assert "kept failing after 3 attempt(s): HTTP 502: scripted 502" in results[0].message
    assert len(fake.bodies) == 6


def test_a_client_error_is_not_retried(slices):
    fake = FakeOpenAI([Reply(status=400), Reply()])
    with serving(fake.app) as url:
        [result] = _backend(url).review(slices[:1])
    assert isinstance(result, ReviewerFailure)
    assert "refused the request: HTTP 400: scripted 400" in result.message
    assert len(fake.bodies) == 1


def test_an_unknown_model_names_what_the_server_serves(slices):
    fake = FakeOpenAI([Reply(status=404)], models=[{"id": "base"}, {"id": "python", "parent": "base"}])
    with serving(fake.app) as url:
        [result] = _backend(url, fallback_to_base=False).review(slices[:1])
    assert "model 'sql' is not served here (served: base, python)" in result.message


def test_garbage_content_becomes_a_reviewer_failure_with_the_raw_text(slices):
    garbage = 'Sure! Here is my review: {"verdict": "maybe"}'
    fake = FakeOpenAI([Reply(content=garbage)])
    with serving(fake.app) as url:
        [result] = _backend(url).review(slices[:1])
    assert isinstance(result, ReviewerFailure)
    assert result.message.startswith("answer broke the contract")
    assert result.raw == garbage


def test_finish_reason_length_on_a_cut_answer_is_a_failure_on_a_whole_one_an_answer(slices):
    cut = SCRIPTED_ANSWER[: len(SCRIPTED_ANSWER) // 2]
    fake = FakeOpenAI([Reply(content=cut, finish_reason="length"), Reply(finish_reason="length")])
    with serving(fake.app) as url:
        [strict] = _backend(url).review(slices[:1])
        [whole] = _backend(url).review(slices[:1])
    assert isinstance(strict, ReviewerFailure) and "finish_reason=length" in strict.message
    assert isinstance(whole, ReviewerOutput)


def test_a_schema_violation_names_the_field(slices):
    fake = FakeOpenAI([Reply(content='{"verdict":"maybe","findings":[],"missing_checks":[],"suggested_fix":""}',
                             finish_reason="stop")])
    with serving(fake.app) as url:
        [result] = _backend(url).review(slices[:1])
    assert "verdict" in result.message


def test_a_body_that_is_not_a_chat_completion_is_a_failure(slices):
    fake = FakeOpenAI([Reply(body={"result": "ok"})])
    with serving(fake.app) as url:
        [result] = _backend(url).review(slices[:1])
    assert isinstance(result, ReviewerFailure) and "not a chat completion" in result.message


def test_a_timeout_is_reported_without_queueing_the_work_again(slices):
    fake = FakeOpenAI([Reply(delay_s=1.5)])
    with serving(fake.app) as url:
        [result] = _backend(url, timeout_s=0.3, max_attempts=3).review(slices[:1])
    assert isinstance(result, ReviewerFailure)
    assert "timed out after 1 attempt(s) (ReadTimeout)" in result.message
    assert len(fake.bodies) == 1


def test_timeouts_are_retried_when_asked(slices):
    fake = FakeOpenAI([Reply(delay_s=1.5)])
    with serving(fake.app) as url:
        [result] = _backend(url, timeout_s=0.3, max_attempts=2, retry_timeouts=True).review(slices[:1])
    assert "timed out after 2 attempt(s) (ReadTimeout)" in result.message
    assert len(fake.bodies) == 2


def test_a_504_from_the_server_is_not_retried(slices):
    fake = FakeOpenAI([Reply(status=504), Reply()])
    with serving(fake.app) as url:
        [result] = _backend(url).review(slices[:1])
    assert isinstance(result, ReviewerFailure)
    assert "timed out on the server: HTTP 504: scripted 504" in result.message
    assert len(fake.bodies) == 1


def test_an_unreachable_server_is_a_failure_not_an_exception(slices):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [result] = _backend(f"http://127.0.0.1:{port}", max_attempts=2).review(slices[:1])
    assert isinstance(result, ReviewerFailure) and "unreachable after 2 attempt(s): ConnectError" in result.message


def test_one_failing_request_does_not_fail_the_others(slices):
    fake = FakeOpenAI([Reply(status=400), Reply()])
    with serving(fake.app) as url:
        results = _backend(url, concurrency=1).review(slices)
    assert isinstance(results[0], ReviewerFailure)
    assert all(isinstance(r, ReviewerOutput) for r in results[1:])


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
