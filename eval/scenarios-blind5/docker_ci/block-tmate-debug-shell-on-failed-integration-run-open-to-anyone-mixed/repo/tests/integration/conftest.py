import os
from time import sleep

import httpx
import pytest


@pytest.fixture(scope="session")
def api_url() -> str:
    return os.environ["STAGING_API_URL"]


def _wait_until_ready(client: httpx.Client, attempts: int = 10) -> None:
    """Staging scales to zero at night; the first requests can hit a cold start."""
    for attempt in range(attempts):
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        sleep(min(2 ** attempt, 15))
    pytest.exit("staging API did not become healthy", returncode=3)


@pytest.fixture(scope="session")
def api(api_url):
    token = os.environ["STAGING_SERVICE_TOKEN"]
    with httpx.Client(
        base_url=api_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(10.0, connect=5.0),
        transport=httpx.HTTPTransport(retries=2),
    ) as client:
        _wait_until_ready(client)
        yield client
