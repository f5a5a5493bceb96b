"""The GitHub client against the fake GitHub on loopback: auth, reads, writes, retries, secrecy."""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.github_client import GitHubAppClients, GitHubError, GitHubRateLimited, RetryPolicy, rate_limit_wait
from tests.app.fake_github import FakeGitHub
from tests.app.github_env import (  # noqa: F401 - fixtures
    APP_ID,
    RecordingSleeper,
    app_clients,
    app_key_pair,
    fake_github,
    read_diff,
    sleeper,
)

HEAD = "a" * 40


def run(coro):
    return asyncio.run(coro)


@pytest.fixture()
def pr_diff(shared_dir: Path) -> str:
    return read_diff(shared_dir, "011-")


def test_installation_token_is_fetched_once_and_reused(fake_github: FakeGitHub, app_clients, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)

    async def twice():
        first = await app_clients.for_installation(99).get_pull("acme", "web", 7)
        second = await app_clients.for_installation(99).get_pull_diff("acme", "web", 7)
        return first, second

    pull, diff = run(twice())
    assert pull.head_sha == HEAD and pull.base_ref == "main"
    assert diff == pr_diff
    assert fake_github.tokens_issued == 1
    assert set(fake_github.tokens.values()) == {99}


def test_token_is_renewed_when_close_to_expiry(fake_github: FakeGitHub, app_clients, pr_diff):
    fake_github.token_lifetime = __import__("datetime").timedelta(seconds=30)  # under githubkit's 1-minute margin
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)

    async def twice():
        await app_clients.for_installation(5).get_pull("acme", "web", 7)
        await app_clients.for_installation(5).get_pull("acme", "web", 7)

    run(twice())
    assert fake_github.tokens_issued == 2


def test_wrong_private_key_is_refused_without_leaking_it(fake_github: FakeGitHub, pr_diff, caplog):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    clients = GitHubAppClients(app_id=APP_ID, private_key=other, base_url=fake_github.base_url,
                               sleeper=RecordingSleeper())
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GitHubError) as err:
        run(clients.for_installation(1).get_pull("acme", "web", 7))
    assert err.value.status == 401
    secret_body = other.splitlines()[1]
    assert secret_body not in str(err.value) and secret_body not in caplog.text
    assert "PRIVATE KEY" not in repr(clients)


def test_list_files_pages_through_a_104_file_pull_request(fake_github: FakeGitHub, app_clients, shared_dir):
    diff = read_diff(shared_dir, "013-")
    fake_github.add_pull("acme", "web", 13, diff, head_sha=HEAD)
    files = run(app_clients.for_installation(1).list_pull_files("acme", "web", 13))
    assert len(files) == 104
    assert len(fake_github.calls("pulls/list-files")) == 2  # 100 + 4
    assert len({f.filename for f in files}) == 104


def test_file_text_at_ref_and_missing_file(fake_github: FakeGitHub, app_clients, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD, config="max_inline_comments: 3\n")
    client = app_clients.for_installation(1)
    assert run(client.get_file_text("acme", "web", ".calora.yml", "main")) == "max_inline_comments: 3\n"
    assert run(client.get_file_text("acme", "web", ".calora.yml", HEAD)) is None
    path = "backend/app/alembic/versions/1a31ce608336_add_cascade_delete_relationships.py"
    text = run(client.get_file_text("acme", "web", path, HEAD))
    assert text is not None and text.startswith('"""Add cascade delete relationships')


def test_server_errors_are_retried_with_backoff(fake_github: FakeGitHub, app_clients, sleeper, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    fake_github.add_fault("GET", r"/pulls/7$", 502, body="<html>Bad gateway</html>", times=2)
    pull = run(app_clients.for_installation(1).get_pull("acme", "web", 7))
    assert pull.number == 7
    assert sleeper.waits == [1.0, 2.0]


def test_server_errors_give_up_after_the_last_attempt(fake_github: FakeGitHub, app_clients, sleeper, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    fake_github.add_fault("GET", r"/pulls/7$", 503, body={"message": "Service unavailable"}, times=10)
    with pytest.raises(GitHubError) as err:
        run(app_clients.for_installation(1).get_pull("acme", "web", 7))
    assert err.value.status == 503 and "pulls/get" in str(err.value)
    assert len(sleeper.waits) == 3  # 4 attempts


def test_rate_limit_honours_retry_after(fake_github: FakeGitHub, app_clients, sleeper, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    fake_github.add_fault("GET", r"/pulls/7$", 403, headers={"Retry-After": "17"},
                          body={"message": "You have exceeded a secondary rate limit."})
    assert run(app_clients.for_installation(1).get_pull("acme", "web", 7)).number == 7
    assert sleeper.waits == [17.0]


def test_rate_limit_honours_ratelimit_reset(fake_github: FakeGitHub, app_clients, sleeper, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    reset = int(time.time()) + 40
    fake_github.add_fault("GET", r"/pulls/7$", 429, headers={"x-ratelimit-remaining": "0",
                                                              "x-ratelimit-reset": str(reset)},
                          body={"message": "API rate limit exceeded"})
    assert run(app_clients.for_installation(1).get_pull("acme", "web", 7)).number == 7
    assert len(sleeper.waits) == 1 and 30 <= sleeper.waits[0] <= 41


def test_rate_limit_longer_than_the_cap_gives_up_without_sleeping(fake_github: FakeGitHub, pr_diff, app_key_pair):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    fake_github.add_fault("GET", r"/pulls/7$", 403, headers={"Retry-After": "3600"},
                          body={"message": "You have exceeded a secondary rate limit."})
    sleeper = RecordingSleeper()
    clients = GitHubAppClients(app_id=APP_ID, private_key=app_key_pair[0], base_url=fake_github.base_url,
                               sleeper=sleeper, retry=RetryPolicy(max_rate_limit_wait=60))
    with pytest.raises(GitHubRateLimited) as err:
        run(clients.for_installation(1).get_pull("acme", "web", 7))
    assert err.value.retry_after == 3600 and sleeper.waits == []


def test_permission_errors_are_not_retried(fake_github: FakeGitHub, app_clients, sleeper, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    fake_github.add_fault("POST", r"/check-runs$", 403,
                          body={"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError) as err:
        run(app_clients.for_installation(1).create_check_run("acme", "web", name="x", head_sha=HEAD))
    assert err.value.status == 403 and "Resource not accessible" in str(err.value)
    assert sleeper.waits == []


def test_network_errors_are_retried(app_key_pair):
    sleeper = RecordingSleeper()
    clients = GitHubAppClients(app_id=APP_ID, private_key=app_key_pair[0], base_url="http://127.0.0.1:9/",
                               sleeper=sleeper, retry=RetryPolicy(attempts=3))
    with pytest.raises(GitHubError) as err:
        run(clients.for_installation(1).get_pull("acme", "web", 7))
    assert err.value.status is None and "network error" in str(err.value)
    assert sleeper.waits == [1.0, 2.0]


def test_the_bot_refuses_to_approve(fake_github: FakeGitHub, app_clients, pr_diff):
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    with pytest.raises(ValueError, match="refusing review event 'APPROVE'"):
        run(app_clients.for_installation(1).create_review(
            "acme", "web", 7, commit_id=HEAD, body="ok", event="APPROVE", comments=[]  # type: ignore[arg-type]
        ))
    assert fake_github.reviews == []


def test_tokens_never_reach_logs_or_errors(fake_github: FakeGitHub, app_clients, pr_diff, caplog):
    caplog.set_level(logging.DEBUG)
    fake_github.add_pull("acme", "web", 7, pr_diff, head_sha=HEAD)
    fake_github.add_fault("GET", r"/pulls/7$", 502, times=1)
    fake_github.add_fault("GET", r"/pulls/7/files", 404, body={"message": "Not Found"}, times=1)
    client = app_clients.for_installation(1)
    run(client.get_pull("acme", "web", 7))
    with pytest.raises(GitHubError) as err:
        run(client.list_pull_files("acme", "web", 7))
    (token,) = fake_github.tokens
    assert token not in caplog.text and token not in str(err.value)


def test_diff_rebuilt_from_the_file_list_has_the_same_hunks(shared_dir):
    from app.github_client import PullFile, diff_from_files
    from app.publishing import map_diff
    from tests.app.fake_github import file_entries

    for prefix in ("011-", "021-", "012-", "004-"):
        original = read_diff(shared_dir, prefix)
        files = [PullFile.model_validate(e) for e in file_entries(original)]
        rebuilt, missing = diff_from_files(files)
        before, after = map_diff(original), map_diff(rebuilt)
        assert set(after.files) | set(missing) == set(before.files), prefix
        for path, diff_file in after.files.items():
            assert diff_file == before.files[path], (prefix, path)
        assert all(path.endswith(".png") for path in missing), missing


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "30"}, 30.0),
    ({"retry-after": "Thu, 01 Jan 2026 00:10:00 GMT"}, 600.0),
    ({"retry-after": "Wed, 31 Dec 2025 23:00:00 GMT"}, 0.0),  # already past: go now
    ({"retry-after": "soon"}, 60.0),
    ({"x-ratelimit-reset": "1767226000"}, 400.0),
    ({}, 60.0),
])
def test_rate_limit_wait_reads_seconds_http_dates_and_reset_times(headers, expected):
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # 1767225600
    assert rate_limit_wait(headers, now) == pytest.approx(expected)
