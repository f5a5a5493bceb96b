import os
import platform
import time

from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import get_session

# Mounted without the auth dependency: the load balancer and kubelet call these.
router = APIRouter(tags=["health"])

STARTED_AT = time.monotonic()


@router.get("/healthz")
def healthz(session: Session = Depends(get_session)) -> dict[str, str]:
    session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/healthz/details")
def healthz_details(session: Session = Depends(get_session)) -> dict[str, object]:
    """Everything on-call needs when a pod misbehaves, in one request."""
    started = time.perf_counter()
    session.execute(text("SELECT 1"))
    db_latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return {
        "status": "ok",
        "version": os.environ.get("APP_VERSION", "dev"),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "uptime_s": round(time.monotonic() - STARTED_AT),
        "db_latency_ms": db_latency_ms,
        "environment": dict(os.environ),
    }
