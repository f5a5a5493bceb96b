"""`EngineBackend`: the in-process engine behind the `ReviewerBackend` interface the app uses."""

from __future__ import annotations

import json

from reviewers.backends.base import BackendResult, ReviewerFailure
from reviewers.contract import ContractError, ReviewRequest, extract_json_object, parse_review
from reviewers.engine.engine import Engine, EngineError, GenerationRequest, GenerationResult
from reviewers.prompt import render_messages


def drop_inverted_ranges(text: str) -> str:
    """Remove `end_line` from findings whose end_line is before line.

    The one contract rule a JSON-schema grammar cannot express (it relates two fields), so a constrained
    answer can still break it; the range is dropped and the finding keeps its first line.
    """
    try:
        data = extract_json_object(text)
    except ContractError:
        return text
    changed = False
    for finding in data.get("findings", []) if isinstance(data.get("findings"), list) else []:
        if not isinstance(finding, dict):
            continue
        line, end = finding.get("line"), finding.get("end_line")
        if isinstance(line, int) and isinstance(end, int) and end < line:
            del finding["end_line"]
            changed = True
    return json.dumps(data, separators=(",", ":")) if changed else text


class EngineBackend:
    """Reviews with the engine: adapter = the reviewer's name when loaded, else the base model."""

    name = "engine"

    def __init__(self, engine: Engine, constrained: bool = True, max_new_tokens: int = 1024) -> None:
        self.engine = engine
        self.constrained = constrained
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_settings(cls, settings) -> EngineBackend:
        """Build from `reviewers.backends.factory.BackendSettings` (base model, adapters folder, device)."""
        import torch

        from reviewers.backends.transformers_backend import find_adapters
        from reviewers.models import resolve_base_model

        ref = resolve_base_model(settings.base_model)
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        engine = Engine.from_pretrained(
            ref.source, gguf_file=ref.gguf_file, adapters=find_adapters(settings.adapters_dir), device=device,
            max_seq_len=8192,
        )
        return cls(engine, max_new_tokens=settings.max_new_tokens)

    def review(self, requests: list[ReviewRequest]) -> list[BackendResult]:
        loaded = set(self.engine.adapters)
        futures = [
            self.engine.submit(
                GenerationRequest(
                    prompt=render_messages(request),
                    adapter=request.reviewer if request.reviewer in loaded else None,
                    max_new_tokens=self.max_new_tokens,
                    constrained=self.constrained,
                )
            )
            for request in requests
        ]
        results: list[BackendResult] = []
        for request, future in zip(requests, futures):
            try:
                results.append(self._parse(request, future.result()))
            except EngineError as exc:
                results.append(ReviewerFailure(reviewer=request.reviewer, message=f"engine: {exc}"))
        return results

    def _parse(self, request: ReviewRequest, result: GenerationResult) -> BackendResult:
        if result.finish_reason == "length":
            how = "closed early to stay valid JSON" if result.forced_close else "cut off"
            return ReviewerFailure(
                reviewer=request.reviewer,
                message=f"the answer ran out of max_new_tokens={self.max_new_tokens} and was {how}; "
                "raise max_new_tokens or shorten the slice",
                raw=result.text,
            )
        try:
            return parse_review(drop_inverted_ranges(result.text))
        except ContractError as exc:
            return ReviewerFailure(reviewer=request.reviewer, message=f"contract: {exc}", raw=result.text)
