"""The console's read-only JSON API under /api (the pages poll it; scripts may use it too).

GET /api/reviews            recent reviews: ?repo=owner/name&state=running&decision=block&limit=50
GET /api/reviews/{id}       one review with its whole PipelineRun (slices, answers, checks, synthesis);
                            ?summary=true without it, ?raw=true the stored run JSON as written
GET /api/reviewers/grid     reviewers × recent reviews, reviewers × latest eval metrics with gate results
GET /api/training           per reviewer: training runs, scores by checkpoint, promotion decisions
GET /api/roles              what serves each role and whether code leaves the machine
GET /api/loops              recent `calora loop` runs; GET /api/loops/{id} one with every round (redacted)

Every answer needs console access (see app.console.auth): 401 without a valid token when one is
configured, 403 for non-loopback clients when none is.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from app.console.auth import request_access
from app.console.records import ReviewFilter
from app.console.service import Console


def _json(content: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(content=content, status_code=status_code, headers={"Cache-Control": "no-store"})


def build_api_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/api")

    async def guard(request: Request) -> None:
        decision = request_access(request, console.token)
        if decision.access == "forbidden":
            raise HTTPException(status_code=403, detail=decision.reason)
        if decision.access == "login":
            raise HTTPException(
                status_code=401, detail=decision.reason, headers={"WWW-Authenticate": "Bearer"}
            )

    @router.get("/reviews")
    async def list_reviews(
        request: Request,
        repo: str | None = None,
        state: str | None = None,
        decision: str | None = None,
        limit: int = Query(default=50, ge=1, le=500),
    ) -> JSONResponse:
        await guard(request)
        try:
            wanted = ReviewFilter(
                repo=repo or None, state=state or None, decision=decision or None, limit=limit
            )
        except ValidationError as exc:
            return _json(
                {"error": "bad filter", "detail": exc.errors(include_url=False, include_context=False)}, 400
            )
        items = await anyio.to_thread.run_sync(console.list_items, wanted)
        return _json(
            {
                "reviews": [i.model_dump(mode="json") for i in items],
                "poll_seconds": console.console.console_poll_seconds,
            }
        )

    @router.get("/reviews/{review_id}")
    async def get_review(
        request: Request, review_id: int, summary: bool = False, raw: bool = False
    ) -> Response:
        await guard(request)
        if raw:
            stored = await anyio.to_thread.run_sync(console.reviews.raw_pipeline, review_id)
            if stored is None:
                return _json({"error": f"no stored pipeline run for review {review_id}"}, 404)
            return Response(stored, media_type="application/json", headers={"Cache-Control": "no-store"})
        detail = await anyio.to_thread.run_sync(console.reviews.get_review, review_id)
        if detail is None:
            return _json({"error": f"no review {review_id}"}, 404)
        item = console.item(detail)
        body = item.model_dump(mode="json")
        if not summary:
            body["review"] = detail.model_dump(mode="json")
        return _json(body)

    @router.get("/reviewers/grid")
    async def grid(request: Request) -> JSONResponse:
        await guard(request)
        return _json((await anyio.to_thread.run_sync(console.grid)).model_dump(mode="json"))

    @router.get("/training")
    async def training(request: Request) -> JSONResponse:
        await guard(request)
        outcomes = await anyio.to_thread.run_sync(console.training)
        return _json(
            {
                "reviewers": [
                    o.model_dump(mode="json", exclude={"score_svgs": True, "runs": {"__all__": {"loss_svg"}}})
                    for o in outcomes
                ]
            }
        )

    @router.get("/roles")
    async def roles(request: Request) -> JSONResponse:
        await guard(request)
        return _json((await anyio.to_thread.run_sync(console.roles)).model_dump(mode="json"))

    @router.get("/loops")
    async def loops(request: Request, limit: int = Query(default=50, ge=1, le=500)) -> JSONResponse:
        await guard(request)
        from loop.records import LoopReader  # the coding loop's records (calora loop), same database

        rows = await anyio.to_thread.run_sync(LoopReader(console.reviews.engine).list_loops, limit)
        return _json({"loops": [r.model_dump(mode="json") for r in rows]})

    @router.get("/loops/{loop_id}")
    async def loop_detail(request: Request, loop_id: int) -> Response:
        await guard(request)
        from loop.records import LoopReader
        from reviewers.safe_text import redact

        detail = await anyio.to_thread.run_sync(LoopReader(console.reviews.engine).get_loop, loop_id)
        if detail is None:
            return _json({"error": f"no loop {loop_id}"}, 404)
        # the author's answers and patches may quote secrets from the repository: redacted like the pages
        return Response(redact(detail.model_dump_json()), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    return router
