"""`GET /healthz` (what is loaded, how full the queue is) and `GET /metrics` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reviewers.serving.state import ServingDep

router = APIRouter()


@router.get("/healthz")
async def healthz(serving: ServingDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "base_model": serving.settings.base_model,
        "adapters": list(serving.generator.adapters),
        "queue_depth": serving.admission.in_flight,
        "queue_capacity": serving.settings.max_queue,
    }


@router.get("/metrics")
async def metrics_text(serving: ServingDep) -> Response:
    return Response(generate_latest(serving.metrics.registry), media_type=CONTENT_TYPE_LATEST)
