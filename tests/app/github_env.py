"""Fixtures for tests that talk to the fake GitHub: the App's key pair, the served fake, the clients.

Test modules import the fixtures they use from here (tests/app has no conftest of this helper's own).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.github_client import GitHubAppClients, RetryPolicy
from tests.app.fake_github import FakeGitHub

APP_ID = 424242
BOT_LOGIN = "calora-review[bot]"


class RecordingSleeper:
    """Stands in for asyncio.sleep: records how long the client wanted to wait, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="session")
def app_key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


@pytest.fixture()
def fake_github(shared_dir: Path, app_key_pair: tuple[str, str]) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(
        shared_dir / "github" / "openapi" / "api.github.com.json",
        app_id=APP_ID, public_key_pem=app_key_pair[1], bot_login=BOT_LOGIN,
    )
    with fake.serve():
        yield fake
    assert fake.violations == [], "requests GitHub's OpenAPI schema rejects:\n" + "\n".join(fake.violations)


@pytest.fixture()
def sleeper() -> RecordingSleeper:
    return RecordingSleeper()


@pytest.fixture()
def app_clients(fake_github: FakeGitHub, app_key_pair: tuple[str, str], sleeper: RecordingSleeper) -> GitHubAppClients:
    return GitHubAppClients(
        app_id=APP_ID, private_key=app_key_pair[0], base_url=fake_github.base_url, sleeper=sleeper,
        retry=RetryPolicy(attempts=4, max_rate_limit_wait=120.0),
    )


def read_diff(shared_dir: Path, prefix: str) -> str:
    (path,) = sorted((shared_dir / "github" / "diffs" / "real").glob(f"{prefix}*.diff"))
    return path.read_text(encoding="utf-8")
