"""The reviewer server (`calora reviewers serve`): one base model and its LoRA reviewers over HTTP.

Endpoints, one router each (`routes/`):
- `POST /v1/review` (`routes/review.py`): a batch of `ReviewRequest`s → one result per request (a
  `ReviewerOutput` or an error). A request whose reviewer has a loaded adapter uses it; any other reviewer
  gets the base model.
- `POST /v1/chat/completions` (`routes/chat.py`): OpenAI-compatible, non-streaming. `model` is an adapter
  name or the base model's name. `response_format` `json_schema` (with the `ReviewerOutput` schema) or
  `json_object` turns on constrained decoding: the only grammar this server has is the reviewer contract.
- `GET /v1/models` and `GET /v1/schema` (`routes/models.py`): the base model, then each adapter with
  `parent` = the base, as vLLM lists them; the one schema `response_format` may name.
- `GET /healthz` and `GET /metrics` (`routes/health.py`; Prometheus text: queue depth, tokens/s, requests,
  latency).

Back-pressure: at most `max_queue` generations are in flight (queued or decoding in the generator). A
request that does not fit is refused at once with 429 and `Retry-After`, so a client backs off instead of
piling up work the GPU cannot finish in time. A generation that runs past `request_timeout_s` answers 504;
it keeps its place until the generator finishes it (the engine has no cancellation), so the queue stays
an honest measure of outstanding work.

The generator (`state.Generator`: the engine, `reviewers.engine.engine.Engine`) is injected:
`calora reviewers serve` (reviewers/engine/commands.py) loads the engine and hands it to `app.run_server`;
the routes reach it, with the settings, admission and metrics, through the `state.Serving` dependency.
Tests run the real engine on a tiny random model. Every answer is judged by `reviewers.contract.read_answer`.
"""
