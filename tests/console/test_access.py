"""Who may read the console: the token when one is configured, loopback clients when none is."""

from __future__ import annotations

import pytest
from conftest import TOKEN, SeededConsole
from fastapi.testclient import TestClient

from app.console.auth import decide_access, session_value
from app.console.pages import safe_next

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.9", 50000)


def access(
    token: str | None,
    host: str = "127.0.0.1",
    authorization: str | None = None,
    cookie: str | None = None,
    proxied: bool = False,
) -> str:
    return decide_access(
        token, client_host=host, authorization=authorization, cookie=cookie, proxied=proxied
    ).access


def test_without_a_token_only_direct_loopback_clients_are_served() -> None:
    assert access(None, "127.0.0.1") == "ok"
    assert access(None, "::1") == "ok"
    assert access(None, "203.0.113.9") == "forbidden"
    assert access(None, "10.0.0.5") == "forbidden"
    assert access(None, "testclient") == "forbidden"
    assert access(None, None) == "forbidden"  # type: ignore[arg-type]
    assert access(None, "127.0.0.1", proxied=True) == "forbidden"  # a local proxy makes everyone loopback


def test_with_a_token_the_bearer_or_the_session_cookie_is_needed_even_on_loopback() -> None:
    assert access("s3cret", "127.0.0.1") == "login"
    assert access("s3cret", authorization="Bearer s3cret") == "ok"
    assert access("s3cret", authorization="bearer s3cret") == "ok"
    assert access("s3cret", authorization="Bearer wrong") == "login"
    assert access("s3cret", authorization="Basic s3cret") == "login"
    assert access("s3cret", "203.0.113.9", cookie=session_value("s3cret")) == "ok"
    assert access("s3cret", cookie=session_value("another")) == "login"
    assert access("s3cret", cookie="s3cret") == "login"  # the cookie holds an HMAC, never the token


def test_login_sends_you_back_only_inside_the_console() -> None:
    assert safe_next("/console/reviews/3") == "/console/reviews/3"
    for target in (
        "https://evil.example/",
        "//evil.example/console",
        "/api/reviews",
        None,
        "/console\\..\\x",
    ):
        assert safe_next(target) == "/console/reviews"


PAGES = [
    "/console/reviews",
    "/console/reviews/1",
    "/console/reviewers",
    "/console/training",
    "/console/roles",
    "/console/loops",
]
APIS = ["/api/reviews", "/api/reviews/1", "/api/reviewers/grid", "/api/training", "/api/roles", "/api/loops"]


def test_without_a_token_remote_clients_get_403_on_every_page_and_api(seeded: SeededConsole) -> None:
    client = TestClient(seeded.app(), client=REMOTE)
    for path in PAGES + APIS:
        assert client.get(path).status_code == 403, path
    local = TestClient(seeded.app(), client=LOOPBACK)
    for path in PAGES + APIS:
        assert local.get(path).status_code == 200, path
    proxied = local.get("/api/reviews", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and "proxy" in proxied.json()["detail"]


def test_with_a_token_the_api_answers_401_and_pages_send_you_to_the_login_form(seeded: SeededConsole) -> None:
    client = TestClient(seeded.app(token=TOKEN), client=LOOPBACK, follow_redirects=False)
    for path in APIS:
        answer = client.get(path)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", path
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, path
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next="), (
            path
        )


def test_the_login_form_sets_a_session_cookie_and_logout_removes_it(seeded: SeededConsole) -> None:
    client = TestClient(seeded.app(token=TOKEN), client=REMOTE, follow_redirects=False)
    wrong = client.post("/console/login", data={"token": "nope", "next": "/console/roles"})
    assert wrong.status_code == 401 and "That token is not right" in wrong.text
    assert "calora_console" not in client.cookies
    right = client.post("/console/login", data={"token": TOKEN, "next": "/console/roles"})
    assert right.status_code == 303 and right.headers["location"] == "/console/roles"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert client.get("/console/roles").status_code == 200
    assert client.get("/api/roles").status_code == 200
    client.post("/console/logout")
    assert client.get("/console/roles").status_code == 303


def test_an_oversized_login_form_is_refused(seeded: SeededConsole) -> None:
    client = TestClient(seeded.app(token=TOKEN), client=REMOTE, follow_redirects=False)
    answer = client.post(
        "/console/login",
        content=b"token=" + b"x" * 10_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413


def test_pages_carry_a_strict_content_security_policy(seeded: SeededConsole) -> None:
    page = TestClient(seeded.app(), client=LOOPBACK).get("/console/reviews")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/console/static/console.css", "/console/static/console.js"])
def test_static_files_ship_inside_the_package(seeded: SeededConsole, path: str) -> None:
    assert TestClient(seeded.app(), client=REMOTE).get(path).status_code == 200


def test_mounting_again_configures_the_mounted_console_instead_of_adding_routes(
    seeded: SeededConsole,
) -> None:
    from app.console import mount_console

    app = seeded.app()
    routes = len(app.routes)
    mount_console(app, seeded.settings(), seeded.console_settings(TOKEN))
    assert len(app.routes) == routes
    client = TestClient(app, client=LOOPBACK)
    assert client.get("/api/reviews").status_code == 401
    assert client.get("/api/reviews", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
