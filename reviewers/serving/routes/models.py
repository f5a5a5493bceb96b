"""`GET /v1/models` (the base model, then each adapter with `parent` = the base, as vLLM lists them) and
`GET /v1/schema` (the one schema `response_format` may name)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from reviewers.contract import reviewer_output_schema
from reviewers.serving.state import ServingDep

router = APIRouter(prefix="/v1")


@router.get("/models")
async def models(serving: ServingDep) -> dict[str, Any]:
    created = int(time.time())
    base = serving.settings.base_model
    data = [{"id": base, "object": "model", "created": created, "owned_by": "calora", "root": base, "parent": None}]
    data += [{"id": name, "object": "model", "created": created, "owned_by": "calora", "root": name, "parent": base}
             for name in serving.generator.adapters]
    return {"object": "list", "data": data}


@router.get("/schema")
async def schema() -> dict[str, Any]:
    """The ReviewerOutput schema, the one `response_format` may name."""
    return reviewer_output_schema()
