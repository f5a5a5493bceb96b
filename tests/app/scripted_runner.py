"""The job runner of the start-up and kill tests (CALORA_JOB_RUNNER=tests.app.scripted_runner:review).

It runs the REAL review job (`app.review_job.run_review`) against the fake GitHub the test serves
(CALORA_GITHUB_API_URL), with the App key and id from the settings; only the reviewer backend is the
scripted one (tests/app/scripted_backend.py: no model, not a test of one). Importing this module stands
in for loading the model: `calora serve` imports it when its worker loads the job hooks, and the import
sleeps CALORA_TEST_LOAD_SECONDS first, so a test can deliver webhooks, and kill the process, mid-load.
"""

from __future__ import annotations

import os
import time

from app import review_job
from app.github_client import GitHubAppClients
from app.jobs import ReviewJobSpec
from app.review_job import ReviewContext, ReviewOutcome, run_review
from app.settings import Settings
from tests.app.scripted_backend import DB_URL_FINDING, ScriptedBackend


def _load() -> ReviewContext:
    time.sleep(float(os.environ.get("CALORA_TEST_LOAD_SECONDS", "0")))
    settings = Settings()
    assert settings.app_id is not None and settings.private_key_path is not None
    clients = GitHubAppClients(app_id=settings.app_id, private_key=settings.private_key_path.read_text(),
                               base_url=settings.github_api_url)
    return ReviewContext(clients=clients.for_installation, backend=ScriptedBackend([DB_URL_FINDING]), settings=settings)


CONTEXT = _load()


async def review(spec: ReviewJobSpec) -> ReviewOutcome:
    return await run_review(spec, CONTEXT)


async def conclude_failure(spec: ReviewJobSpec, reason: str) -> None:
    await review_job.conclude_failure(spec, CONTEXT, reason)
