"""The loop with a reviewer model that really runs (a tiny random Llama on the in-process transformers
backend) and hostile author text on the console's timeline."""

from __future__ import annotations

from pathlib import Path

import torch

from app.console.pages import make_environment
from app.console.views import multi_agent_view
from app.store import make_engine
from loop.author import OpenAIAuthor
from loop.records import LoopReader, LoopRecorder
from loop.rounds import AuthorTurn, RoundRecord
from loop.runner import LoopSettings, run_loop
from reviewers.backends.transformers_backend import TransformersBackend
from reviewers.models import BaseModelRef
from tests.loop.scripted_author import FIXED, TASK, ScriptedAuthor, Step, fenced, git_status, make_repo
from tests.loopback import serve_in_thread


def tiny_llama(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    return LlamaForCausalLM(config).eval()


def test_each_reviewer_answer_of_a_real_model_is_recorded_and_an_unusable_one_never_approves(
    tmp_path: Path, tiny_tokenizer,
) -> None:
    repo = make_repo(tmp_path)
    db = f"sqlite:///{tmp_path / 'calora.sqlite'}"
    backend = TransformersBackend(BaseModelRef(source="in-memory"), None, device="cpu", max_new_tokens=12,
                                  model=tiny_llama(len(tiny_tokenizer)), tokenizer=tiny_tokenizer)
    author = ScriptedAuthor([Step(FIXED)])
    recorder = LoopRecorder.from_url(db)
    with serve_in_thread(author.app()) as url:
        client = OpenAIAuthor(f"{url}/v1", "scripted", timeout_s=30)
        summary = run_loop(LoopSettings(task=TASK, repo=repo, max_rounds=2), client, backend, recorder)
    assert [r.status for r in summary.rounds] == ["reviewed", "unchanged"]
    assert summary.rounds[0].decision == "incomplete" and not summary.approved
    detail = LoopReader(make_engine(db)).get_loop(summary.loop_id or 0)
    assert detail is not None
    review = detail.rounds_recorded[0].review
    assert review is not None and [o.reviewer for o in review.outcomes] == ["python"]
    outcome = review.outcomes[0]
    assert outcome.output is None and outcome.error, "the random model's answer breaks the contract"
    assert "python" in review.result.incomplete_reason
    assert "The review is incomplete" in detail.rounds_recorded[0].feedback
    html = make_environment().get_template("loop.html").render(
        detail=detail, rounds=[(r, multi_agent_view(r.review) if r.review else None) for r in detail.rounds_recorded],
        request_path="/console/loops/1", token_required=False, poll_seconds=5)
    assert '<span class="chip verdict-error">error</span>' in html and "not asked" not in html
    assert git_status(repo) == ""


def test_hostile_author_text_on_the_timeline_is_escaped_capped_and_redacted() -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    hostile = f"<script>alert(1)</script> <img src=x onerror=alert(2)> {token} " + "A" * 300_000
    record = RoundRecord(
        number=1, status="no_patch", message=f"no patch: <b>bold</b> {token}",
        author=AuthorTurn(text=hostile), problems=[f"<iframe src=javascript:alert(3)> {token}"],
        patch=fenced("+<script>x</script>"), feedback="<svg onload=alert(4)>",
    )
    from loop.records import LoopDetail

    detail = LoopDetail(id=1, task=f"<h1>task</h1> {token}", repo="/r", base_sha="0" * 40, branch="b",
                        worktree="/w", author=f"<a href=javascript:x>m</a> {token}", reviewers="none",
                        max_rounds=3, state="done", created_at=0.0, rounds_recorded=[record, record])
    html = make_environment().get_template("loop.html").render(
        detail=detail, rounds=[(record, None), (record, None)], request_path="/console/loops/1",
        token_required=False, poll_seconds=5,
    )
    for raw in ("<script>", "<img", "<iframe", "<svg", "<b>bold", "<h1>task", "<a href=javascript"):
        assert raw not in html
    assert "&lt;script&gt;" in html and token not in html and "[redacted]" in html
    assert len(html) < 400_000 and "… (truncated)" in html


def test_an_author_that_answers_an_http_error_or_no_chat_completion_gets_a_clear_message() -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, PlainTextResponse

    from reviewers.prompt import ChatMessage

    app = FastAPI()

    @app.post("/broken/v1/chat/completions")
    async def broken() -> JSONResponse:
        return JSONResponse({"error": {"message": "model 'x' is loading"}}, status_code=503)

    @app.post("/html/v1/chat/completions")
    async def html() -> PlainTextResponse:
        return PlainTextResponse("<html>proxy login</html>")

    @app.post("/empty/v1/chat/completions")
    async def empty() -> JSONResponse:
        return JSONResponse({"choices": []})

    asked = [ChatMessage(role="user", content="hi")]
    with serve_in_thread(app) as url:
        errors = [OpenAIAuthor(f"{url}/{name}/v1", "x", timeout_s=10).ask(asked).error
                  for name in ("broken", "html", "empty")]
    unreachable = OpenAIAuthor("http://127.0.0.1:9/v1", "x", timeout_s=5).ask(asked).error
    assert errors[0] == f"the author (x at {url}/broken/v1) answered HTTP 503: model 'x' is loading"
    assert errors[1] is not None and errors[1].startswith(f"the author (x at {url}/html/v1) sent no chat completion")
    assert errors[2] is not None and "no choices[0].message.content" in errors[2]
    assert unreachable is not None and "is unreachable: ConnectError" in unreachable
