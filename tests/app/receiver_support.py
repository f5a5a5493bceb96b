"""Shared by the receiver's tests: real payloads, signing, and a real server on loopback."""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

from app.webhooks import sign

REPO_ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS_DIR = REPO_ROOT.parent / "shared" / "github" / "webhooks"
TEST_SECRET = b"test-secret: not a real one"


def payload_files() -> list[Path]:
    """Every real webhook example, as `<event>/<name>.json` paths."""
    return sorted(WEBHOOKS_DIR.glob("*/*.json"))


def load_payload(relative: str) -> dict[str, Any]:
    return json.loads((WEBHOOKS_DIR / relative).read_text())


def event_of(path: Path) -> str:
    return path.parent.name


def signed_headers(body: bytes, event: str, delivery_id: str, secret: bytes = TEST_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(body, secret),
        "User-Agent": "GitHub-Hookshot/test",
    }


def pull_request_payload(number: int, head_sha: str, action: str = "opened", installation_id: int = 1) -> dict[str, Any]:
    """The real `pull_request/opened` example, renumbered: one distinct pull request per test delivery."""
    payload = copy.deepcopy(load_payload("pull_request/opened.payload.json"))
    payload["action"] = action
    payload["number"] = number
    payload["pull_request"]["number"] = number
    payload["pull_request"]["head"]["sha"] = head_sha
    payload["installation"] = {"id": installation_id, "node_id": "test"}
    return payload


def pr_comment_payload(body: str, association: str = "OWNER", user_type: str = "User",
                       login: str = "Codertocat") -> dict[str, Any]:
    """The real `issue_comment/created.with-installation` example, moved onto a pull request."""
    payload = copy.deepcopy(load_payload("issue_comment/created.with-installation.payload.json"))
    issue = payload["issue"]
    issue["pull_request"] = {"url": issue["url"].replace("/issues/", "/pulls/"), "html_url": issue["html_url"]}
    issue["state"] = "open"
    payload["comment"]["body"] = body
    payload["comment"]["author_association"] = association
    payload["comment"]["user"]["type"] = user_type
    payload["comment"]["user"]["login"] = login
    payload["sender"]["type"] = user_type
    payload["sender"]["login"] = login
    return payload


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


