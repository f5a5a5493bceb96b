"""The console's HTML pages under /console, rendered on the server (Jinja2), refreshed by a little JS.

Pages: Reviews, Review detail (the multi-agent view), Reviewer grid, Training outcomes, Role map, Loops
(`calora loop` runs, each a timeline of rounds), and the login form. Static files (CSS, JS) ship inside
the package; no build step, no CDN.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from app.console.auth import COOKIE_NAME, request_access, session_value
from app.console.records import DECISIONS, REVIEW_STATES, ReviewFilter
from app.console.service import Console
from app.console.views import multi_agent_view
from reviewers.safe_text import MESSAGE_LIMIT, cap, redact

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_LOGIN_BODY = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def ago(timestamp: float | None, now: float | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 d ago'."""
    if timestamp is None:
        return "—"
    seconds = max(0.0, (now if now is not None else time.time()) - timestamp)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def utc(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.0f}%" if 0 <= value <= 1 else f"{value:.3g}"


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago,
        duration=duration,
        utc=utc,
        percent=percent,
        short=lambda sha: (sha or "")[:7],
        basename=lambda path: Path(str(path)).name,
        pretty_json=lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str),
        model=model_text,
    )
    return env


def model_text(value: object, limit: int = MESSAGE_LIMIT) -> str:
    """Model text for a console page: capped and redacted (autoescaping keeps its HTML inert)."""
    return redact(cap(str(value or ""), limit))


def safe_next(target: str | None) -> str:
    """Where to go after logging in: only a path inside the console (no open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/reviews"


def build_pages_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/console")
    env = make_environment()

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            request_path=request.url.path,
            token_required=console.token is not None,
            poll_seconds=console.console.console_poll_seconds,
            **context,
        )
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    def refuse(request: Request) -> Response | None:
        """None when the request may read the console, else the answer that refuses it."""
        decision = request_access(request, console.token)
        if decision.access == "ok":
            return None
        if decision.access == "forbidden":
            return page(request, "refused.html", status_code=403, reason=decision.reason)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(
            f"/console/login?{urlencode({'next': target})}",
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )

    @router.get("", include_in_schema=False)
    @router.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console/reviews", status_code=307)

    @router.get("/login")
    async def login_form(request: Request, next: str | None = None) -> Response:
        if console.token is None:
            return RedirectResponse(safe_next(next), status_code=303)
        return page(request, "login.html", next=safe_next(next), error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        if console.token is None:
            return RedirectResponse("/console/reviews", status_code=303)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                return page(
                    request,
                    "login.html",
                    status_code=413,
                    next="/console/reviews",
                    error="the form was too large",
                )
        fields = parse_qs(body.decode("utf-8", "replace"))
        given = (fields.get("token") or [""])[0].strip()
        target = safe_next((fields.get("next") or [None])[0])
        import hmac

        if not given or not hmac.compare_digest(given.encode(), console.token.encode()):
            return page(request, "login.html", status_code=401, next=target, error="That token is not right.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            session_value(console.token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
            max_age=30 * 86400,
        )
        return response

    @router.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    @router.get("/reviews")
    async def reviews(
        request: Request,
        repo: str | None = None,
        state: str | None = None,
        decision: str | None = None,
        limit: int = 50,
    ) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        error = None
        try:
            wanted = ReviewFilter(
                repo=repo or None,
                state=state or None,
                decision=decision or None,
                limit=max(1, min(limit, 500)),
            )
        except ValidationError:
            wanted, error = ReviewFilter(), "That filter is not valid; showing every review."
        items = await anyio.to_thread.run_sync(console.list_items, wanted)
        repos = await anyio.to_thread.run_sync(console.reviews.repos)
        live = any(i.review.state in ("queued", "running") for i in items)
        query = urlencode(
            {
                k: v
                for k, v in (("repo", wanted.repo), ("state", wanted.state), ("decision", wanted.decision))
                if v
            }
        )
        return page(
            request,
            "reviews.html",
            items=items,
            wanted=wanted,
            repos=repos,
            states=REVIEW_STATES,
            decisions=DECISIONS,
            live=live,
            api_query=query,
            error=error,
            now=time.time(),
        )

    @router.get("/reviews/{review_id}")
    async def review_detail(request: Request, review_id: int) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        detail = await anyio.to_thread.run_sync(console.reviews.get_review, review_id)
        if detail is None:
            return page(request, "missing.html", status_code=404, what=f"review {review_id}")
        view = multi_agent_view(detail.pipeline) if detail.pipeline is not None else None
        return page(
            request,
            "review.html",
            review=detail,
            item=console.item(detail),
            view=view,
            live=detail.state in ("queued", "running"),
            now=time.time(),
        )

    @router.get("/reviewers")
    async def reviewer_grid(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        grid = await anyio.to_thread.run_sync(console.grid)
        return page(request, "reviewers.html", grid=grid)

    @router.get("/training")
    async def training(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        outcomes = await anyio.to_thread.run_sync(console.training)
        return page(
            request,
            "training.html",
            outcomes=outcomes,
            runs_dir=str(console.console.console_runs_dir),
            history=str(console.console.eval_history),
        )

    @router.get("/loops")
    async def loops(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        from loop.records import LoopReader  # the coding loop's records (calora loop), same database

        rows = await anyio.to_thread.run_sync(LoopReader(console.reviews.engine).list_loops)
        return page(request, "loops.html", loops=rows, now=time.time())

    @router.get("/loops/{loop_id}")
    async def loop_detail(request: Request, loop_id: int) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        from loop.records import LoopReader

        detail = await anyio.to_thread.run_sync(LoopReader(console.reviews.engine).get_loop, loop_id)
        if detail is None:
            return page(request, "missing.html", status_code=404, what=f"loop {loop_id}")
        views = [multi_agent_view(r.review) if r.review else None for r in detail.rounds_recorded]
        return page(request, "loop.html", detail=detail, rounds=list(zip(detail.rounds_recorded, views, strict=True)))

    @router.get("/roles")
    async def roles(request: Request) -> Response:
        if (refused := refuse(request)) is not None:
            return refused
        return page(request, "roles.html", roles=await anyio.to_thread.run_sync(console.roles))

    return router
