"""The console in a real browser: headless Chromium against the real server on loopback, seeded database.

Each page loads without console errors at desktop and phone width (and leaves a screenshot in
docs/screenshots/, or in $CALORA_SCREENSHOT_DIR), the review detail shows a seeded review's findings, the
token is required when one is configured, and a running review turns done on the open page by itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import (
    DESKTOP,
    MISSING_REASON,
    PHONE,
    browser_available,
    chromium,
    console_errors,
    screenshot,
    set_viewport,
)
from conftest import TOKEN, SeededConsole, build_seeded
from seed import spec_for

from app.review_job import ReviewOutcome
from app.review_outputs import ReviewOutputs
from app.store import Store

pytestmark = [pytest.mark.skipif(not browser_available(), reason=MISSING_REASON), pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("CALORA_SCREENSHOT_DIR") or REPO_ROOT / "docs" / "screenshots")


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium() as session:
        yield session


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `condition`; a page that reloads meanwhile (stale or missing elements) is polled again.

    Chrome sometimes reports an element replaced between finding it and reading it not as a stale
    element but as a node that "does not belong to the document": the same race, polled again too."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None
        except WebDriverException as exc:
            if "does not belong to the document" not in str(exc):
                raise
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def open_page(driver: Any, url: str, width: int, mobile: bool) -> None:
    set_viewport(driver, width, PHONE[1] if mobile else DESKTOP[1], mobile)
    console_errors(driver)  # drain what earlier pages logged
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", what="page load")


def text_of(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return "\n".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


def test_every_page_loads_without_console_errors_at_desktop_and_phone_width(
    seeded: SeededConsole, serve: Callable[..., str], driver: Any
) -> None:
    base = serve(seeded.app())
    detail = seeded.reviews["created_at"].review_id
    pages = [
        ("reviews", "/console/reviews", "Reviews", "fastapi/full-stack-fastapi-template"),
        ("review-detail", f"/console/reviews/{detail}", "full-stack-fastapi-template", "Synthesis"),
        ("reviewer-grid", "/console/reviewers", "Reviewer grid", "Latest eval metrics"),
        ("training", "/console/training", "Training outcomes", "step-40"),
        ("role-map", "/console/roles", "Role map", "reviewer: python"),
    ]
    for name, path, heading, expected in pages:
        for label, (width, _height), mobile in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
            open_page(driver, base + path, width, mobile)
            assert heading in text_of(driver, "h1"), f"{path} at {label} width"
            assert expected in text_of(driver, "main"), f"{path} at {label} width"
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{path} scrolls sideways by {overflow} px at {label} width"
            screenshot(driver, SCREENSHOTS / f"{name}-{label}.png", width, mobile)
            assert console_errors(driver) == [], f"console errors on {path} at {label} width"


def test_review_detail_shows_the_findings_of_a_seeded_review(
    seeded: SeededConsole, serve: Callable[..., str], driver: Any
) -> None:
    base = serve(seeded.app())
    review = seeded.reviews["created_at"]
    open_page(driver, f"{base}/console/reviews/{review.review_id}", *DESKTOP[:1], mobile=False)
    synthesis = text_of(driver, "#synthesis")
    assert review.messages, "the seed has findings"
    for message in review.messages:
        assert message in synthesis
    assert "raised by python, sql" in synthesis  # one problem, two reviewers, merged
    flagged = text_of(driver, "#synthesis .cl.flagged")
    assert "op.add_column('item', sa.Column('created_at'" in flagged  # the finding's own lines, from the diff
    reviewers = text_of(driver, "#reviewers")
    assert "python" in reviewers and "sql" in reviewers
    assert "a migration test: upgrade then downgrade on a database that has rows" in reviewers
    assert "checks:ruff/F401" in text_of(driver, "#checks")  # the real analyzer's evidence on the added migration
    assert "generated code" in text_of(driver, ".not-reviewed")
    assert console_errors(driver) == []


def test_the_token_is_required_when_configured(
    seeded: SeededConsole, serve: Callable[..., str], driver: Any
) -> None:
    from selenium.webdriver.common.by import By

    base = serve(seeded.app(token=TOKEN))
    assert httpx.get(f"{base}/api/reviews").status_code == 401
    assert httpx.get(f"{base}/api/reviews", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{base}/api/reviews", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    open_page(driver, f"{base}/console/reviewers", *DESKTOP[:1], mobile=False)
    assert "/console/login" in driver.current_url
    assert "Reviewer grid" not in text_of(driver, "h1")
    driver.find_element(By.NAME, "token").send_keys("not the token")
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: "That token is not right" in text_of(driver, "main"), what="the refusal")
    refusal = console_errors(driver)  # the form answers a wrong token with 401, which Chromium logs
    assert len(refusal) == 1 and "/console/login" in refusal[0] and "401" in refusal[0], refusal
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: "Reviewer grid" in text_of(driver, "h1"), what="the page asked for before logging in")
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait_for(lambda: "/console/login" in driver.current_url, what="logout")
    driver.get(f"{base}/console/reviews")
    assert "/console/login" in driver.current_url
    assert console_errors(driver) == []


def test_a_running_review_turns_done_on_the_open_page(
    tmp_path: Path, serve: Callable[..., str], driver: Any
) -> None:
    from selenium.webdriver.common.by import By

    own = build_seeded(tmp_path)
    base = serve(own.app())
    running = own.reviews["running"]
    finished_run = own.reviews["created_at"].run
    assert finished_run is not None
    store = Store.from_url(own.database_url)
    try:
        # The review's own page: the stage moves, then the page turns into the finished review.
        open_page(driver, f"{base}/console/reviews/{running.review_id}", DESKTOP[0], mobile=False)
        assert "updates when it is done" in text_of(driver, "main")
        store.record_stage(running.spec, "synthesizing 2 answers")
        wait_for(lambda: "synthesizing 2 answers" in text_of(driver, "dl.facts"), what="the new stage")
        store.record_outputs(
            running.spec,
            ReviewOutputs.of(finished_run, ReviewOutcome(status="reviewed", head_sha=running.spec.head_sha)),
        )
        assert running.review_id is not None
        store.complete(running.review_id, "seed-worker")
        wait_for(
            lambda: own.reviews["created_at"].messages[0] in text_of(driver, "#synthesis"),
            what="the findings to appear without a manual reload",
        )

        # The list: a review that starts and finishes while the page is open.
        later = spec_for("acme", "web", 77, "7" * 40, "live-77")
        open_page(driver, f"{base}/console/reviews", DESKTOP[0], mobile=False)
        # Due before the seeded queued job, so that this claim takes it (a job queued an hour ago).
        later_job = store.enqueue(later, now=time.time() - 3600)
        claimed = store.claim("live-worker", lease_seconds=600)
        assert claimed is not None and claimed.id == later_job
        wait_for(
            lambda: driver.find_elements(By.CSS_SELECTOR, 'tr[data-state="running"] td'),
            what="the new running review to appear",
        )
        row = driver.find_element(By.XPATH, "//tr[td[contains(., 'acme/web')]]")
        key = row.get_attribute("data-key")
        store.record_outputs(
            later, ReviewOutputs.of(finished_run, ReviewOutcome(status="reviewed", head_sha=later.head_sha))
        )
        store.complete(later_job, "live-worker")
    finally:
        store.close()
    selector = f'tr[data-key="{key}"]'
    wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, selector).get_attribute("data-state") == "done",
        what="the row to turn done without a manual reload",
    )
    wait_for(lambda: "revise" in text_of(driver, selector), what="the verdict in the row")
    assert console_errors(driver) == []


def console_is_mounted_by_create_app() -> bool:
    """Whether `calora serve` itself serves the console (app/server.py calls mount_console)."""
    import tempfile

    from fastapi.testclient import TestClient

    from app.server import create_app
    from app.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            Settings(webhook_secret="x", database_url=f"sqlite:///{folder}/probe.sqlite"), run_worker=False
        )
        return TestClient(app, client=("127.0.0.1", 50000)).get("/api/roles").status_code != 404


@pytest.mark.skipif(
    not console_is_mounted_by_create_app(),
    reason="app/server.py does not call mount_console yet, so `calora serve` has no /console",
)
def test_calora_serve_serves_the_console_configured_from_the_environment(tmp_path: Path, driver: Any) -> None:
    import socket
    import subprocess
    import sys

    own = build_seeded(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CALORA_WEBHOOK_SECRET": "test-secret",
        "CALORA_DATABASE_URL": own.database_url,
        "CALORA_CONSOLE_TOKEN": TOKEN,
        "CALORA_CONSOLE_RUNS_DIR": str(own.runs_root),
        "CALORA_EVAL_HISTORY": str(own.history),
        "CALORA_ADAPTERS_DIR": str(own.adapters),
        "CALORA_BACKEND": "engine",
    }
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--no-worker", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(lambda: _answers(f"{base}/healthz"), timeout=30, what="calora serve to start")
        except AssertionError:
            raise AssertionError((tmp_path / "serve.log").read_text(errors="replace")[-3000:]) from None
        assert httpx.get(f"{base}/api/reviews").status_code == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        roles = httpx.get(f"{base}/api/roles", headers=headers).json()["roles"]
        assert any(r["role"] == "reviewer: python" and r["adapter"] for r in roles)
        from selenium.webdriver.common.by import By

        open_page(driver, f"{base}/console/training", DESKTOP[0], mobile=False)
        driver.find_element(By.NAME, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait_for(lambda: "step-40" in text_of(driver, "main"), what="the training page after logging in")
        assert console_errors(driver) == []
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
