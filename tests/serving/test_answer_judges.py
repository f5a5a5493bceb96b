"""One answer, one verdict: every backend, the reviewer server and the eval judge a model's answer alike.

The same answer texts (valid, fenced, prose then JSON, cut at the token limit, closed early at the limit,
an inverted range, garbage) go through each one's own judging path: the engine backend's `judge`, the
reviewer server's `review_item`, the OpenAI backend over real HTTP (a scripted server plays the model),
the transformers backend's `judge` and the eval's `answer_from_text`. All of them must agree, because
they all call `reviewers.contract.read_answer`. No model is tested here: the texts are the input.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from eval.generation import Generation, answer_from_text
from reviewers.backends.base import BackendResult, ReviewerFailure
from reviewers.backends.openai_backend import OpenAIBackend
from reviewers.backends.transformers_backend import Decoded, TransformersBackend, decode_generated
from reviewers.contract import ReviewerOutput, ReviewRequest
from reviewers.engine.backend import EngineBackend
from reviewers.engine.engine import GenerationResult
from reviewers.models import BaseModelRef
from reviewers.serving.routes.review import review_item
from tests.serving.conftest import serving
from tests.serving.fake_openai import FakeOpenAI, Reply

CAP = 64
FINDING = {"path": "app/db.py", "line": 42, "end_line": 44, "severity": "blocker", "category": "security",
           "message": "The query interpolates user input; bind the parameter."}
VALID = json.dumps({"verdict": "revise", "findings": [FINDING], "missing_checks": ["a quote in user_id"],
                    "suggested_fix": "Bind the parameter."})
INVERTED = VALID.replace('"end_line": 44', '"end_line": 40')

# name → (answer text, finish_reason, forced_close, expected: an output's findings' (line, end_line) or an error start)
CASES: dict[str, tuple[str, str, bool, object]] = {
    "valid": (VALID, "stop", False, [(42, 44)]),
    "fenced": (f"```json\n{VALID}\n```\nThat is all.", "stop", False, [(42, 44)]),
    "prose-then-json": (f"Here is my review:\n{VALID}", "stop", False, "answer broke the contract"),
    "cut-at-the-limit": (VALID[:70], "length", False, f"the answer ran out of max_new_tokens={CAP}"),
    "prose-cut-at-the-limit": ("Sure! The change looks fine, but", "length", False, "answer broke the contract"),
    "closed-early-at-the-limit": (VALID, "length", True, [(42, 44)]),
    "inverted-range": (INVERTED, "stop", False, [(42, None)]),
    "garbage": ("Looks good to me! }{", "stop", False, "answer broke the contract"),
}
REQUEST = ReviewRequest(reviewer="python", diff="diff --git a/app/db.py b/app/db.py\n")


def verdict(result: BackendResult | ReviewerOutput | str) -> object:
    """What a judge decided, in one comparable shape: the findings' ranges, or the error's first clause."""
    if isinstance(result, ReviewerOutput):
        return [(f.line, f.end_line) for f in result.findings]
    message = result.message if isinstance(result, ReviewerFailure) else result
    return message.split(" (")[0].split(":")[0].removesuffix(" and was closed early to stay valid JSON") \
        .removesuffix(" and was cut off")


def engine_backend(engine, text: str, finish: str, forced: bool) -> object:
    result = GenerationResult(text=text, token_ids=[1] * 3, prompt_tokens=10, finish_reason=finish, seconds=0.1,
                              forced_close=forced)
    return verdict(EngineBackend(engine, max_new_tokens=CAP).judge(REQUEST, result))


def reviewer_server(text: str, finish: str, forced: bool) -> object:
    result = GenerationResult(text=text, token_ids=[1] * 3, prompt_tokens=10, finish_reason=finish, seconds=0.1,
                              forced_close=forced)
    item = review_item(REQUEST, "python", result, max_new_tokens=CAP, accept_truncated=False)
    return verdict(item.output if item.output is not None else item.error)


def openai_backend(text: str, finish: str, forced: bool) -> object:
    fake = FakeOpenAI([Reply(content=text, finish_reason=finish)])
    with serving(fake.app) as url:
        backend = OpenAIBackend(f"{url}/v1", max_tokens=CAP, max_attempts=1)
        [result] = backend.review([REQUEST])
        backend.close()
    return verdict(result)


def transformers_backend(backend: TransformersBackend, text: str, finish: str, forced: bool) -> object:
    return verdict(backend.judge(REQUEST, Decoded(text=text, tokens=3, finish_reason=finish)))


def eval_generation(text: str, finish: str, forced: bool) -> object:
    answer = answer_from_text(Generation(text=text, latency_s=0.1, truncated=finish == "length"), CAP)
    return verdict(answer.output if answer.output is not None else answer.error)


@pytest.fixture(scope="module")
def transformers(tiny_model, tiny_tokenizer) -> TransformersBackend:
    return TransformersBackend(BaseModelRef(source="in-memory"), None, device="cpu", max_new_tokens=CAP,
                               model=tiny_model, tokenizer=copy.deepcopy(tiny_tokenizer))


@pytest.mark.parametrize("case", list(CASES))
def test_every_backend_the_server_and_the_eval_judge_an_answer_alike(case, engine, transformers):
    text, finish, forced, expected = CASES[case]
    verdicts = {
        "engine backend": engine_backend(engine, text, finish, forced),
        "reviewer server": reviewer_server(text, finish, forced),
        "openai backend": openai_backend(text, finish, forced),
        "transformers backend": transformers_backend(transformers, text, finish, forced),
        "eval": eval_generation(text, finish, forced),
    }
    assert verdicts == dict.fromkeys(verdicts, expected)


def test_the_transformers_backend_says_length_only_for_an_answer_cut_at_the_cap(transformers):
    """Its `finish_reason` comes from the tokens: the cap reached with no end token and no whole object."""
    tokenizer = transformers.tokenizer
    cut = tokenizer(VALID[:70], add_special_tokens=False)["input_ids"]
    whole = tokenizer(VALID, add_special_tokens=False)["input_ids"]
    ended = cut + [tokenizer.eos_token_id]

    def finish(ids: list[int], cap: int) -> str:
        [row] = decode_generated(tokenizer, torch.tensor([ids]), cap, json_answer=True)
        return row.finish_reason

    assert finish(cut, len(cut)) == "length"
    assert finish(whole, len(whole)) == "stop"  # the object was whole when the cap came
    assert finish(ended, len(ended)) == "stop"  # an end token before the cap
    assert finish(cut, len(cut) + 5) == "stop"  # the stop rule ended it before the cap
