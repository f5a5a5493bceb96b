"""Who may read the console: a bearer token or a session cookie from the login form; loopback when no token.

Pure decisions (`decide_access`) are separate from the FastAPI glue so they can be tested directly.
The cookie holds an HMAC of the token, never the token itself, so a leaked cookie does not reveal it
and changing the token logs every browser out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

COOKIE_NAME = "calora_console"
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
Access = Literal["ok", "login", "forbidden"]


@dataclass(frozen=True)
class AccessDecision:
    access: Access
    reason: str = ""


def session_value(token: str) -> str:
    """What the session cookie holds for `token`."""
    return hmac.new(token.encode(), b"calora console session v1", hashlib.sha256).hexdigest()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def decide_access(
    token: str | None,
    *,
    client_host: str | None,
    authorization: str | None,
    cookie: str | None,
    proxied: bool,
) -> AccessDecision:
    """Whether a request may read the console.

    With a token: the bearer token or the session cookie must match (else `login`). Without one:
    only a direct loopback client (else `forbidden`: set CALORA_CONSOLE_TOKEN to serve others).
    """
    if token is None:
        if proxied:
            return AccessDecision(
                "forbidden",
                "the request came through a proxy and CALORA_CONSOLE_TOKEN is not set; "
                "set a console token to serve the console behind a proxy",
            )
        if is_loopback(client_host):
            return AccessDecision("ok")
        return AccessDecision(
            "forbidden", "CALORA_CONSOLE_TOKEN is not set, so the console answers loopback clients only"
        )
    given = bearer_token(authorization)
    if given is not None and hmac.compare_digest(given.encode(), token.encode()):
        return AccessDecision("ok")
    if cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return AccessDecision("ok")
    if given is not None:
        return AccessDecision("login", "the bearer token is wrong")
    return AccessDecision("login", "a console token is required")


def request_access(request: Request, token: str | None) -> AccessDecision:
    return decide_access(
        token,
        client_host=request.client.host if request.client else None,
        authorization=request.headers.get("authorization"),
        cookie=request.cookies.get(COOKIE_NAME),
        proxied=any(h in request.headers for h in PROXY_HEADERS),
    )
