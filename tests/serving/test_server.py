"""The reviewer server over real HTTP on loopback, driving the real engine on a tiny random model."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from reviewers.contract import ReviewerOutput, ReviewRequest, parse_review, reviewer_output_schema
from reviewers.prompt import render_messages
from reviewers.serving.app import create_app
from reviewers.serving.state import ServerSettings
from tests.serving.conftest import BASE_NAME, make_engine, serving


def _diff(real_diffs, index: int = 0, chars: int = 600) -> str:
    return real_diffs[index].read_text(errors="replace")[:chars]


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found[1])


def _chat_body(model: str, request: ReviewRequest, **extra) -> dict:
    return {"model": model, "messages": [m.model_dump() for m in render_messages(request)], **extra}


def test_models_list_the_base_model_then_each_adapter_with_its_parent(reviewer_server):
    data = httpx.get(f"{reviewer_server}/v1/models").json()
    assert data["object"] == "list"
    ids = [m["id"] for m in data["data"]]
    assert ids == [BASE_NAME, "python", "sql"]
    assert data["data"][0]["parent"] is None
    assert all(m["parent"] == BASE_NAME for m in data["data"][1:])


def test_healthz_reports_adapters_and_queue(reviewer_server):
    health = httpx.get(f"{reviewer_server}/healthz").json()
    assert health["status"] == "ok"
    assert health["adapters"] == ["python", "sql"]
    assert health["queue_capacity"] == 32


def test_chat_completion_is_openai_shaped_and_constrained_json_parses(reviewer_server, real_diffs):
    request = ReviewRequest(reviewer="python", diff=_diff(real_diffs))
    body = _chat_body("python", request, max_tokens=64, response_format={
        "type": "json_schema", "json_schema": {"name": "ReviewerOutput", "schema": reviewer_output_schema()},
    })
    response = httpx.post(f"{reviewer_server}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "python"
    assert data["id"].startswith("chatcmpl-")
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    assert 0 < data["usage"]["completion_tokens"] <= 64
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    assert isinstance(parse_review(choice["message"]["content"]), ReviewerOutput)


def test_adapter_changes_the_answer_of_the_same_prompt(reviewer_server, real_diffs):
    """The model name really selects the adapter: base, python and sql answer the same prompt differently."""
    request = ReviewRequest(reviewer="python", diff=_diff(real_diffs, 1))
    texts = {}
    for model in (BASE_NAME, "python", "sql"):
        response = httpx.post(f"{reviewer_server}/v1/chat/completions", timeout=60,
                              json=_chat_body(model, request, max_tokens=24))
        assert response.status_code == 200, response.text
        texts[model] = response.json()["choices"][0]["message"]["content"]
    assert len(set(texts.values())) == 3, texts


def test_unknown_model_is_404_naming_what_is_served(reviewer_server, real_diffs):
    request = ReviewRequest(reviewer="vue", diff=_diff(real_diffs))
    response = httpx.post(f"{reviewer_server}/v1/chat/completions", json=_chat_body("vue", request))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "model_not_found"
    assert "'vue'" in error["message"] and "python" in error["message"] and BASE_NAME in error["message"]


@pytest.mark.parametrize("extra, needle", [
    ({"stream": True}, "streaming is not supported"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}}, "ReviewerOutput"),
    ({"response_format": {"type": "regex"}}, "not supported"),
    ({"max_tokens": 100000}, "over this server's limit"),
    ({"messages": []}, "messages"),
])
def test_requests_the_server_cannot_honour_are_400_with_the_reason(reviewer_server, real_diffs, extra, needle):
    body = {**_chat_body("python", ReviewRequest(reviewer="python", diff=_diff(real_diffs))), **extra}
    response = httpx.post(f"{reviewer_server}/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]["message"]


def test_review_batch_returns_one_result_per_request_in_order(reviewer_server, real_diffs):
    requests = [
        ReviewRequest(reviewer="sql", diff=_diff(real_diffs, 2)),
        ReviewRequest(reviewer="python", diff=_diff(real_diffs, 3)),
        ReviewRequest(reviewer="docker_ci", diff=_diff(real_diffs, 4)),  # no adapter: the base model answers
    ]
    body = {"requests": [r.model_dump() for r in requests], "max_new_tokens": 64, "accept_truncated": True}
    response = httpx.post(f"{reviewer_server}/v1/review", json=body, timeout=120)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["reviewer"] for r in results] == ["sql", "python", "docker_ci"]
    assert [r["model"] for r in results] == ["sql", "python", BASE_NAME]
    for r in results:
        assert r["error"] is None, r
        ReviewerOutput.model_validate(r["output"])
        assert 0 < r["completion_tokens"] <= 64


def test_an_answer_the_grammar_closed_at_the_budget_is_kept(reviewer_server, real_diffs):
    """A random model never ends its JSON; the grammar closes it at the budget: valid JSON, kept as an
    answer (without the finding the close cut short, `contract.drop_cut_finding`)."""
    body = {"requests": [ReviewRequest(reviewer="sql", diff=_diff(real_diffs)).model_dump()], "max_new_tokens": 64}
    [item] = httpx.post(f"{reviewer_server}/v1/review", json=body, timeout=60).json()["results"]
    assert item["error"] is None and item["finish_reason"] == "length"
    ReviewerOutput.model_validate(item["output"])


def test_unconstrained_review_of_a_random_model_reports_the_contract_error_per_item(reviewer_server, real_diffs):
    body = {"requests": [ReviewRequest(reviewer="python", diff=_diff(real_diffs)).model_dump()],
            "max_new_tokens": 16, "constrained": False, "accept_truncated": True}
    [item] = httpx.post(f"{reviewer_server}/v1/review", json=body, timeout=60).json()["results"]
    assert item["output"] is None
    assert item["error"].startswith("answer broke the contract")
    assert item["raw"]


def test_review_rejects_a_malformed_request_with_the_field(reviewer_server):
    response = httpx.post(f"{reviewer_server}/v1/review", json={"requests": [{"reviewer": "python"}]})
    assert response.status_code == 400
    assert "requests.0.diff" in response.json()["error"]["message"]


def test_metrics_show_requests_tokens_and_queue(reviewer_server, real_diffs):
    request = ReviewRequest(reviewer="sql", diff=_diff(real_diffs))
    httpx.post(f"{reviewer_server}/v1/chat/completions", json=_chat_body("sql", request, max_tokens=16), timeout=60)
    text = httpx.get(f"{reviewer_server}/metrics").text
    assert 'calora_reviewer_requests_total{endpoint="chat",outcome="ok"}' in text
    assert "calora_reviewer_request_seconds_bucket" in text
    assert "calora_reviewer_queue_depth 0.0" in text
    assert "calora_reviewer_queue_capacity 32.0" in text
    assert _metric(text, "calora_reviewer_generated_tokens_total") >= 16
    assert _metric(text, "calora_reviewer_tokens_per_second") > 0


def test_a_slow_generation_times_out_with_504_and_a_full_queue_answers_429(
    tiny_model, tiny_tokenizer, adapter_dirs, real_diffs
):
    """One long generation fills a queue of one: its HTTP request gets 504 at the timeout, the generation
    keeps its place in the engine, so the next request is refused at once with 429 and Retry-After."""
    engine = make_engine(tiny_model, tiny_tokenizer, adapter_dirs, max_batch=1)
    settings = ServerSettings(base_model=BASE_NAME, max_queue=1, request_timeout_s=0.5, retry_after_s=3)
    request = ReviewRequest(reviewer="python", diff=_diff(real_diffs))
    try:
        with serving(create_app(engine, settings)) as url:
            started = time.monotonic()
            slow = httpx.post(f"{url}/v1/chat/completions", timeout=30,
                              json=_chat_body("python", request, max_tokens=2000))
            assert slow.status_code == 504, slow.text
            assert 0.5 <= time.monotonic() - started < 15
            assert "did not finish within the server's request timeout of 0.5 s" in slow.json()["error"]["message"]
            assert httpx.get(f"{url}/healthz").json()["queue_depth"] == 1  # still generating

            refused = httpx.post(f"{url}/v1/chat/completions", json=_chat_body("python", request, max_tokens=8))
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "3"
            assert "queue is full" in refused.json()["error"]["message"]
            batch = httpx.post(f"{url}/v1/review", json={"requests": [request.model_dump()] * 2})
            assert batch.status_code == 400 and "split it" in batch.json()["error"]["message"]

            text = httpx.get(f"{url}/metrics").text
            assert 'calora_reviewer_requests_total{endpoint="chat",outcome="timeout"} 1.0' in text
            assert 'calora_reviewer_requests_total{endpoint="chat",outcome="queue_full"} 1.0' in text
            assert "calora_reviewer_queue_depth 1.0" in text
    finally:
        engine.close()  # fails the abandoned generation after its current step


def test_review_items_past_the_timeout_say_so(tiny_model, tiny_tokenizer, adapter_dirs, real_diffs):
    engine = make_engine(tiny_model, tiny_tokenizer, adapter_dirs, max_batch=2)
    settings = ServerSettings(base_model=BASE_NAME, max_queue=4, request_timeout_s=0.5, max_new_tokens=2000)
    request = ReviewRequest(reviewer="python", diff=_diff(real_diffs))
    try:
        with serving(create_app(engine, settings)) as url:
            response = httpx.post(f"{url}/v1/review", timeout=30, json={"requests": [request.model_dump()]})
            assert response.status_code == 504
            assert "no review finished within the server's request timeout" in response.json()["error"]["message"]
    finally:
        engine.close()


def test_concurrent_clients_are_batched_and_all_answered(reviewer_server, real_diffs):
    results: list[int] = []

    def ask(i: int) -> None:
        request = ReviewRequest(reviewer=("python", "sql")[i % 2], diff=_diff(real_diffs, i))
        body = _chat_body(request.reviewer, request, max_tokens=64, response_format={"type": "json_object"})
        response = httpx.post(f"{reviewer_server}/v1/chat/completions", json=body, timeout=120)
        parse_review(response.json()["choices"][0]["message"]["content"])
        results.append(response.status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4


def test_calora_reviewers_serve_loads_the_engine_and_injects_it_into_the_server(monkeypatch, engine):
    """The command loads the model (the server imports no backend); its flags reach both."""
    import reviewers.engine.backend
    import reviewers.serving.app
    from app.cli import main
    from reviewers.models import BaseModelRef

    loaded, served = {}, {}

    def load_engine(base_model, adapters_dir, **options):
        loaded.update(base_model=base_model, adapters_dir=adapters_dir, **options)
        return engine, BaseModelRef(source="/models", gguf_file="tiny-base.gguf")

    monkeypatch.setattr(reviewers.engine.backend, "load_engine", load_engine)
    monkeypatch.setattr(reviewers.serving.app, "run_server",
                        lambda generator, options, **where: served.update(generator=generator, options=options,
                                                                         **where) or 0)
    code = main(["reviewers", "serve", "--port", "9001", "--adapters", "promoted", "--max-queue", "3",
                 "--timeout", "7.5", "--retry-after", "4", "--max-batch", "16"])
    assert code == 0
    assert str(loaded["adapters_dir"]) == "promoted" and loaded["max_batch"] == 16 and loaded["device"] == "auto"
    assert served["generator"] is engine and served["port"] == 9001 and served["host"] == "127.0.0.1"
    assert served["options"] == ServerSettings(base_model="tiny-base", max_queue=3, request_timeout_s=7.5,
                                               retry_after_s=4)


def test_the_base_model_is_served_under_its_file_or_folder_name():
    from reviewers.serving.app import served_name

    assert served_name("/models", "SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2-135M-Instruct.Q4_1"
    assert served_name("google/gemma-3-1b-it", None) == "gemma-3-1b-it"
    assert served_name("/models/gemma/", None) == "gemma"
