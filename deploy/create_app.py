"""Create the Calora GitHub App from `app.yml` (GitHub's manifest flow) and save its credentials.

    python deploy/create_app.py --webhook-url https://calora.example.com/webhooks/github [--org ORG]

1. Serves a one-button page on http://127.0.0.1:8765/ that posts the manifest to GitHub.
2. You press "Create GitHub App" on GitHub; GitHub redirects back to this script with a one-time code.
3. The script exchanges the code (POST /app-manifests/{code}/conversions, no token needed) for the
   App's id, private key and webhook secret, and writes them to `deploy/secrets/calora-app.pem` and
   `deploy/.env` (both readable by you only). Nothing is printed except the App's id and install link.

The code expires after one hour and can be exchanged once.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import yaml
from pydantic import BaseModel, SecretStr

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = ROOT / "app.yml"
DEFAULT_OUT = ROOT / "deploy"


class AppCredentials(BaseModel):
    """What GitHub returns once for a new App; the key and secrets are never printed."""

    id: int
    slug: str
    name: str = ""
    html_url: str = ""
    pem: SecretStr
    webhook_secret: SecretStr
    client_id: str = ""
    client_secret: SecretStr | None = None


def load_manifest(path: Path, webhook_url: str, redirect_url: str, name: str | None = None) -> dict[str, Any]:
    """`app.yml` as the JSON manifest GitHub takes, with this deployment's URLs filled in."""
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    manifest["hook_attributes"] = {**manifest.get("hook_attributes", {}), "url": webhook_url, "active": True}
    manifest["redirect_url"] = redirect_url
    if name:
        manifest["name"] = name
    return manifest


def form_page(manifest: dict[str, Any], state: str, org: str | None = None, github_url: str = "https://github.com") -> str:
    """An HTML page with one button that posts the manifest to GitHub's "new App" page."""
    where = f"organizations/{org}/settings/apps/new" if org else "settings/apps/new"
    action = f"{github_url}/{where}?state={state}"
    return (
        "<!doctype html><meta charset=utf-8><title>Create the Calora GitHub App</title>"
        f"<form action=\"{html.escape(action)}\" method=post>"
        f"<input type=hidden name=manifest value=\"{html.escape(json.dumps(manifest))}\">"
        "<p>This sends the manifest in app.yml to GitHub. Check the name and permissions there, then press "
        "<b>Create GitHub App</b>.</p><button type=submit>Continue to GitHub</button></form>"
    )


def exchange_code(code: str, api_url: str = "https://api.github.com", client: httpx.Client | None = None) -> AppCredentials:
    """Trade the one-time code for the App's credentials (GitHub: apps/create-from-manifest)."""
    url = f"{api_url.rstrip('/')}/app-manifests/{code}/conversions"
    http = client or httpx.Client(timeout=30)
    try:
        response = http.post(url, headers={"Accept": "application/vnd.github+json"})
    finally:
        if client is None:
            http.close()
    if response.status_code != 201:
        message = response.json().get("message", "") if response.headers.get("content-type", "").startswith(
            "application/json") else response.text[:200]
        raise RuntimeError(f"GitHub refused the manifest code (HTTP {response.status_code}): {message}. "
                           "A code works once and expires after an hour; run the script again.")
    return AppCredentials.model_validate(response.json())


def write_credentials(creds: AppCredentials, out_dir: Path, key_path_in_env: str | None = None) -> tuple[Path, Path]:
    """Write the private key and a `.env` with the App's settings, both mode 0600."""
    secrets_dir = out_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    key_file = secrets_dir / "calora-app.pem"
    env_file = out_dir / ".env"
    _write_private(key_file, creds.pem.get_secret_value())
    lines = [
        "# Written by deploy/create_app.py. Keep this file private.",
        f"CALORA_APP_ID={creds.id}",
        f"CALORA_BOT_LOGIN={creds.slug}[bot]",
        f"CALORA_WEBHOOK_SECRET={creds.webhook_secret.get_secret_value()}",
        f"CALORA_PRIVATE_KEY_PATH={key_path_in_env or key_file}",
    ]
    _write_private(env_file, "\n".join(lines) + "\n")
    return key_file, env_file


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _serve(args: argparse.Namespace) -> AppCredentials:
    state = secrets.token_urlsafe(16)
    redirect = f"http://127.0.0.1:{args.port}/callback"
    manifest = load_manifest(args.manifest, args.webhook_url, redirect, args.name)
    page = form_page(manifest, state, args.org, args.github_url)
    result: dict[str, Any] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # keep the one-time code out of the terminal
            return

        def _reply(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/":
                return self._reply(200, page)
            if url.path != "/callback":
                return self._reply(404, "not found")
            query = parse_qs(url.query)
            if query.get("state", [""])[0] != state or "code" not in query:
                return self._reply(400, "state does not match; start again")
            try:
                result["creds"] = exchange_code(query["code"][0], args.api_url)
            except Exception as exc:  # noqa: BLE001 - shown to the user, then the script exits
                result["error"] = str(exc)
                self._reply(500, html.escape(str(exc)))
            else:
                self._reply(200, "The App is created and its credentials are saved. You can close this tab.")
            done.set()

    server = HTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"Open http://127.0.0.1:{args.port}/ to create the App (waiting for GitHub's redirect) ...")
    if not args.no_browser:
        webbrowser.open(f"http://127.0.0.1:{args.port}/")
    done.wait()
    server.shutdown()
    if "error" in result:
        raise SystemExit(f"create_app: {result['error']}")
    return result["creds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhook-url", required=True, help="https://YOUR-HOST/webhooks/github")
    parser.add_argument("--org", help="create the App in this organization instead of your account")
    parser.add_argument("--name", help="App name (must be unique on GitHub); default from app.yml")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where secrets/ and .env go")
    parser.add_argument("--key-path-in-env", help="CALORA_PRIVATE_KEY_PATH to write (e.g. /run/secrets/calora-app.pem)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--github-url", default="https://github.com", help="GitHub Enterprise: https://HOST")
    parser.add_argument("--api-url", default="https://api.github.com", help="GitHub Enterprise: https://HOST/api/v3")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    creds = _serve(args)
    key_file, env_file = write_credentials(creds, args.out, args.key_path_in_env)
    print(f"Created GitHub App {creds.slug} (id {creds.id}). Key: {key_file}  Settings: {env_file}")
    print(f"Install it on your repositories: {creds.html_url or 'https://github.com/apps/' + creds.slug}/installations/new")
    return 0


if __name__ == "__main__":
    sys.exit(main())
