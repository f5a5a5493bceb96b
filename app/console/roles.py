"""The role map: which model, adapter, backend and endpoint serves each role, and whether code leaves the machine.

Computed from the settings the app runs with (pure, apart from looking at the adapters folder), with the
same mapping `app.review_job.make_reviewer_backend` uses to build the reviewer backend.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from app.console.settings import ConsoleSettings
from app.settings import Settings
from reviewers.backends.factory import BackendSettings
from reviewers.models import DEFAULT_BASE_MODEL
from reviewers.routing import REVIEWER_NAMES

Egress = Literal["no", "local network", "yes", "unknown"]


class Role(BaseModel):
    """One row of the role map."""

    role: str
    served_by: str = Field(description="What answers: a backend kind, 'rules' or 'not configured'.")
    base_model: str | None = None
    adapter: str | None = None
    adapter_detail: str | None = None
    endpoint: str | None = None
    code_leaves_machine: Egress
    why: str = ""


def egress_of(url: str | None) -> tuple[Egress, str]:
    """Whether sending to `url` takes code off this machine, and to where."""
    if not url:
        return "no", "in-process"
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return "unknown", f"cannot read a host from {url!r}"
    if host in ("localhost", "ip6-localhost") or host.endswith(".localhost"):
        return "no", f"{host} is this machine"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host or host.endswith(
            (".local", ".internal", ".lan", ".home.arpa", ".svc", ".cluster.local")
        ):
            return "local network", f"{host} is a name on the local network"
        return "yes", f"code is sent to {host}"
    if address.is_loopback:
        return "no", f"{host} is this machine"
    if address.is_private or address.is_link_local:
        return "local network", f"{host} is a private address"
    return "yes", f"code is sent to {host}"


def backend_settings(settings: Settings) -> BackendSettings:
    """The BackendSettings the worker builds its backend from (CALORA_* environment included)."""
    return settings.reviewer


def _adapter_of(adapters_dir: Path, reviewer: str) -> tuple[str | None, str | None]:
    """The promoted adapter folder of a reviewer and a one-line description (rank, targets)."""
    folder = adapters_dir / reviewer
    config = folder / "adapter_config.json"
    if not config.is_file():
        return None, "no promoted adapter: the base model answers alone"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return str(folder), f"unreadable adapter_config.json: {exc}"
    targets = data.get("target_modules")
    if isinstance(targets, list):
        targets = ", ".join(sorted(map(str, targets)))
    detail = f"LoRA r={data.get('r')} alpha={data.get('lora_alpha')} on {targets}"
    try:
        provenance = json.loads((folder / "promotion.json").read_text(encoding="utf-8"))
        detail += f"; promoted {provenance.get('checkpoint')} of {provenance.get('training_run')}"
    except (OSError, ValueError, AttributeError):
        pass
    return str(folder), detail


def role_map(
    settings: Settings, console: ConsoleSettings, backend: BackendSettings | None = None
) -> list[Role]:
    """Every role and what serves it."""
    backend = backend or backend_settings(settings)
    kind = backend.backend
    base_model = backend.base_model or f"{DEFAULT_BASE_MODEL} (default)"
    roles: list[Role] = []
    local_adapter: dict[str, bool | None] = {}

    for reviewer in REVIEWER_NAMES:
        if kind == "openai":
            endpoint = backend.openai_base_url
            egress, why = (
                egress_of(endpoint) if endpoint else ("unknown", "CALORA_OPENAI_BASE_URL is not set")
            )
            model = getattr(backend, "openai_models", {}).get(reviewer, reviewer)
            local_adapter[reviewer] = None  # the server decides
            roles.append(
                Role(
                    role=f"reviewer: {reviewer}",
                    served_by="OpenAI-compatible server",
                    base_model=getattr(backend, "openai_base_model", None) or "the server's base model",
                    adapter=model,
                    adapter_detail="asked for as the model name; the server falls back to its base model without it",
                    endpoint=endpoint,
                    code_leaves_machine=egress,
                    why=why,
                )
            )
        else:
            adapter, detail = _adapter_of(backend.adapters_dir, reviewer)
            local_adapter[reviewer] = adapter is not None
            roles.append(
                Role(
                    role=f"reviewer: {reviewer}",
                    served_by=f"{kind} (in-process)",
                    base_model=base_model,
                    adapter=adapter,
                    adapter_detail=detail,
                    endpoint="in-process",
                    code_leaves_machine="no",
                    why="the model runs inside the worker process",
                )
            )

    roles.append(
        Role(
            role="checks",
            served_by="linters (ruff, yamllint, sqlfluff, shellcheck when installed)",
            endpoint="local subprocesses",
            code_leaves_machine="no",
            why="run on a private temporary copy of the changed files",
        )
    )
    roles.append(
        Role(
            role="synthesis",
            served_by="rules (reviewers/synthesis.py), no model",
            endpoint="in-process",
            code_leaves_machine="no",
            why="deduplication and the verdict are pure functions",
        )
    )
    roles += cloud_roles(backend, local_adapter)
    if console.patch_author_model or console.patch_author_base_url:
        egress, why = egress_of(console.patch_author_base_url)
        roles.append(
            Role(
                role="patch author",
                served_by="declared in CALORA_PATCH_AUTHOR_*",
                base_model=console.patch_author_model,
                endpoint=console.patch_author_base_url or "in-process",
                code_leaves_machine=egress,
                why=why + "; the coding agent calls it, the app never does",
            )
        )
    else:
        roles.append(
            Role(
                role="patch author",
                served_by="not configured",
                code_leaves_machine="unknown",
                why="calora reviews; the coding agent that applies `suggested_fix` runs outside the app "
                "(set CALORA_PATCH_AUTHOR_MODEL / _BASE_URL to show it here)",
            )
        )
    egress, why = egress_of(settings.github_api_url)
    roles.append(
        Role(
            role="GitHub (diffs in, reviews out)",
            served_by="GitHub REST API",
            endpoint=settings.github_api_url,
            code_leaves_machine=egress,
            why="diffs come from GitHub and findings go back to the same pull request",
        )
    )
    return roles


def cloud_roles(backend: BackendSettings, local_adapter: dict[str, bool | None]) -> list[Role]:
    """One row per reviewer with a cloud fallback (CALORA_CLOUD_REVIEWERS), or one row saying it is off."""
    from reviewers.backends.cloud import endpoint_of

    cloud_config = getattr(backend, "cloud_reviewers", None) or {}
    if not cloud_config:
        return [
            Role(
                role="cloud fallback",
                served_by="off (CALORA_CLOUD_REVIEWERS is empty)",
                code_leaves_machine="no",
                why="no reviewer is configured to fall back to a hosted model",
            )
        ]
    out = []
    for reviewer, cloud in sorted(cloud_config.items()):
        endpoint = endpoint_of(cloud.base_url)
        egress, why = egress_of(cloud.base_url)
        has_local = local_adapter.get(reviewer)
        if has_local is True:
            when = "inactive now: a local adapter exists, so the cloud is not asked"
            egress = "no"
        elif has_local is False:
            when = "active now: there is no local adapter, so its slices go to the cloud"
        else:
            when = "used when the reviewer server has no adapter for it"
        out.append(
            Role(
                role=f"cloud fallback: {reviewer}",
                served_by="OpenAI-compatible cloud endpoint",
                base_model=cloud.model,
                endpoint=endpoint,
                code_leaves_machine=egress,
                why=f"{why}; {when}",
            )
        )
    return out


class RoleMap(BaseModel):
    """The role rows plus what a maintainer asks first: does any code leave this machine, and to where."""

    roles: list[Role]
    adapters_dir: str | None
    leaves: list[str] = Field(description="Roles whose code leaves the machine (or may).")


def summarize_roles(roles: list[Role], settings: Settings, backend: BackendSettings | None = None) -> RoleMap:
    """The rows with where the adapters come from and which roles send code off this machine."""
    backend = backend or backend_settings(settings)
    adapters = None if backend.backend == "openai" else str(backend.adapters_dir)
    leaves = [
        r.role
        for r in roles
        if not r.role.startswith("GitHub")
        and (
            r.code_leaves_machine == "yes"
            or (r.code_leaves_machine == "unknown" and r.served_by != "not configured")
        )
    ]
    return RoleMap(roles=roles, adapters_dir=adapters, leaves=leaves)
