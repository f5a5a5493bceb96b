"""`calora reviewers serve --devices`: one engine per device behind the server's one queue, each request to
the least loaded engine. Two real CPU engines on the tiny random model stand in for two GPUs."""

from __future__ import annotations

import httpx
import pytest

from reviewers.contract import ReviewRequest
from reviewers.serving.app import create_app
from reviewers.serving.pool import EnginePool, PoolError, least_loaded, parse_devices
from reviewers.serving.state import ServerSettings
from tests.serving.conftest import BASE_NAME, make_engine, serving

TIMING = {"seconds", "latency_s", "elapsed_s"}


@pytest.mark.parametrize(("text", "devices"), [
    ("0,1", ["cuda:0", "cuda:1"]), ("cuda:0, cuda:1", ["cuda:0", "cuda:1"]), ("cpu,cpu", ["cpu", "cpu"]),
    ("3", ["cuda:3"]),
])
def test_devices_flag_names_cuda_indices_cuda_devices_or_cpu(text, devices):
    assert parse_devices(text) == devices


@pytest.mark.parametrize("text", ["", "gpu0", "cuda:x", "auto"])
def test_a_devices_flag_that_names_no_device_is_refused(text):
    with pytest.raises(PoolError):
        parse_devices(text)


def test_the_least_loaded_engine_takes_the_next_request_first_of_equals():
    assert least_loaded([0, 0]) == 0
    assert least_loaded([2, 1, 1]) == 1
    assert least_loaded([3, 5]) == 0


def test_engines_serving_different_adapters_cannot_be_pooled(engine, tiny_model, tiny_tokenizer, adapter_dirs):
    bare = make_engine(tiny_model, tiny_tokenizer, {"python": adapter_dirs["python"]}, max_batch=2)
    try:
        with pytest.raises(PoolError, match="same ones"):
            EnginePool([engine, bare])
    finally:
        bare.close()


@pytest.fixture(scope="module")
def pool_server(tiny_model, tiny_tokenizer, adapter_dirs):
    pool = EnginePool([make_engine(tiny_model, tiny_tokenizer, adapter_dirs, max_batch=4) for _ in range(2)])
    settings = ServerSettings(base_model=BASE_NAME, max_queue=32, request_timeout_s=60, max_new_tokens=96)
    try:
        with serving(create_app(pool, settings)) as url:
            yield url, pool
    finally:
        pool.close()


def _review(url: str, real_diffs) -> list[dict]:
    requests = [ReviewRequest(reviewer=("python", "sql", "docker_ci")[i % 3],
                              diff=real_diffs[i].read_text(errors="replace")[:500]) for i in range(6)]
    body = {"requests": [r.model_dump() for r in requests], "max_new_tokens": 64, "accept_truncated": True}
    response = httpx.post(f"{url}/v1/review", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return [{k: v for k, v in r.items() if k not in TIMING} for r in response.json()["results"]]


def test_two_engines_share_the_requests_and_answer_like_one(pool_server, reviewer_server, real_diffs):
    url, pool = pool_server
    before = list(pool.routed)
    pooled = _review(url, real_diffs)
    spread = [after - was for after, was in zip(pool.routed, before)]
    assert spread == [3, 3], "six requests in one batch alternate between two idle engines"
    assert pool.loads() == [0, 0]
    assert pooled == _review(reviewer_server, real_diffs)
    assert all(r["error"] is None for r in pooled)


def test_the_pool_server_lists_the_adapters_once_and_keeps_one_queue(pool_server):
    url, _pool = pool_server
    health = httpx.get(f"{url}/healthz", timeout=10).json()
    assert health["adapters"] == ["python", "sql"] and health["queue_capacity"] == 32


def test_serve_with_devices_loads_one_engine_per_device_into_one_pool(monkeypatch, engine):
    import reviewers.engine.backend
    import reviewers.serving.app
    from app.cli import main
    from reviewers.models import BaseModelRef

    devices, served = [], {}

    def load_engine(base_model, adapters_dir, *, device, **options):
        devices.append(device)
        return engine, BaseModelRef(source="/models/tiny")

    monkeypatch.setattr(reviewers.engine.backend, "load_engine", load_engine)
    monkeypatch.setattr(reviewers.serving.app, "run_server",
                        lambda generator, options, **where: served.update(generator=generator) or 0)
    assert main(["reviewers", "serve", "--devices", "cpu,cpu", "--engines", "threads"]) == 0
    assert devices == ["cpu", "cpu"]
    assert isinstance(served["generator"], EnginePool) and served["generator"].generators == [engine, engine]
    assert main(["reviewers", "serve", "--devices", "cpu"]) == 0
    assert served["generator"] is engine, "one device serves the engine itself"


@pytest.fixture(scope="module")
def base_folder(tiny_model, tiny_tokenizer, tmp_path_factory):
    """The session's tiny model and tokenizer on disk, as `--base-model` takes them."""
    folder = tmp_path_factory.mktemp("tiny-base")
    tiny_model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_engines_in_child_processes_answer_like_the_in_process_engine(base_folder, adapter_dirs, reviewer_server,
                                                                      real_diffs):
    from reviewers.engine.process import EngineProcess

    adapters = adapter_dirs["python"].parent
    pool = EnginePool([EngineProcess(str(base_folder), adapters, device="cpu", max_batch=4, max_seq_len=4096)
                       for _ in range(2)])
    settings = ServerSettings(base_model=BASE_NAME, max_queue=32, request_timeout_s=120, max_new_tokens=96)
    try:
        assert pool.adapters == ["python", "sql"]
        with serving(create_app(pool, settings)) as url:
            pooled = _review(url, real_diffs)
        assert pool.routed == [3, 3] and pool.loads() == [0, 0]
        assert pooled == _review(reviewer_server, real_diffs)
    finally:
        pool.close()
    assert all(not generator._child.is_alive() for generator in pool.generators), "close ends each child"


def test_an_engine_process_that_cannot_load_says_which_device(tmp_path):
    from reviewers.engine.engine import EngineError
    from reviewers.engine.process import EngineProcess

    with pytest.raises(EngineError, match="the engine on cpu failed to load"):
        EngineProcess(str(tmp_path / "no-such-model"), None, device="cpu")
