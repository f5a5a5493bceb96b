"""The maintainer console: read-only pages under /console and a JSON API under /api.

`mount_console(app, settings)` adds both to the app that `app.server.create_app` builds. The console
writes nothing: it reads the store's job rows and the outputs the review recorded through `app.store.Store`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console.records import ReviewReader, read_engine
from app.console.settings import ConsoleSettings
from app.settings import Settings

__all__ = ["ConsoleSettings", "mount_console"]


def mount_console(app: FastAPI, settings: Settings, console_settings: ConsoleSettings | None = None) -> None:
    """Add /console (pages, static files) and /api (JSON) to `app`, reading `settings.database_url`.

    Calling it again on the same app configures the mounted console anew instead of adding routes twice.
    """
    from app.console.api import build_api_router
    from app.console.outcomes import ScoreReader
    from app.console.pages import STATIC, build_pages_router
    from app.console.service import Console
    from app.store import Store

    console_settings = console_settings or ConsoleSettings()
    # The store's tables are created (and older ones adopted) by the store's engine: the read engine is query-only.
    Store.from_url(settings.database_url).close()
    reviews = ReviewReader(read_engine(settings.database_url))
    scores = ScoreReader(console_settings.eval_history)
    mounted: Console | None = getattr(app.state, "console", None)
    if mounted is not None:
        # Mounted already (create_app mounts it from the environment): the routes keep this object, so
        # configuring it again is enough (tests and embedders pass their own settings this way).
        mounted.reviews.engine.dispose()
        mounted.settings, mounted.console, mounted.reviews, mounted.scores = (
            settings,
            console_settings,
            reviews,
            scores,
        )
        return
    console = Console(settings=settings, console=console_settings, reviews=reviews, scores=scores)
    app.state.console = console
    app.include_router(build_api_router(console))
    app.include_router(build_pages_router(console))
    app.mount("/console/static", StaticFiles(directory=str(STATIC)), name="console-static")
