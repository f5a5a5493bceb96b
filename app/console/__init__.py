"""The maintainer console: read-only pages under /console and a JSON API under /api.

`mount_console(app, settings)` adds both to the app that `app.server.create_app` builds;
`ReviewRecorder` (app.console.records) is what the worker calls to record each review run.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console.records import ReviewReader, ReviewRecorder, create_reviews_table, read_engine
from app.console.settings import ConsoleSettings
from app.settings import Settings

__all__ = ["ConsoleSettings", "ReviewRecorder", "mount_console"]


def mount_console(app: FastAPI, settings: Settings, console_settings: ConsoleSettings | None = None) -> None:
    """Add /console (pages, static files) and /api (JSON) to `app`, reading `settings.database_url`."""
    from app.console.api import build_api_router
    from app.console.outcomes import ScoreReader
    from app.console.pages import STATIC, build_pages_router
    from app.console.service import Console
    from app.store import make_engine

    if getattr(app.state, "console", None) is not None:
        return  # already mounted (create_app may mount it; tests may call this again)
    console_settings = console_settings or ConsoleSettings()
    # The reviews table is created with the writer's engine (the read engine is query-only).
    writer = make_engine(settings.database_url)
    try:
        create_reviews_table(writer)
    finally:
        writer.dispose()
    console = Console(
        settings=settings,
        console=console_settings,
        reviews=ReviewReader(read_engine(settings.database_url)),
        scores=ScoreReader(console_settings.eval_history),
    )
    app.state.console = console
    app.include_router(build_api_router(console))
    app.include_router(build_pages_router(console))
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
