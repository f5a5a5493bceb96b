"""Cache of rendered analytics reports, shared by the report workers and the data notebooks."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator

import redis

_client = redis.Redis.from_url(os.environ["ANALYTICS_REDIS_URL"], socket_timeout=2)


def put_report(report_id: str, payload: dict, ttl_seconds: int = 6 * 3600) -> None:
    _client.set(f"report:{report_id}", json.dumps(payload), ex=ttl_seconds)


def get_report(report_id: str) -> dict | None:
    raw = _client.get(f"report:{report_id}")
    return json.loads(raw) if raw is not None else None


def cached_report_ids(batch: int = 500) -> Iterator[str]:
    """Ids of the reports currently cached; SCAN, never KEYS, so the cache is not blocked."""
    for key in _client.scan_iter(match="report:*", count=batch):
        yield key.decode().removeprefix("report:")
