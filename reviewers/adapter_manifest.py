"""`calora-manifest.json`: what base model an adapter was trained on, checked before it is loaded.

A LoRA adapter is a delta on one set of base weights; on other weights of the same shape it loads
without complaint and answers nonsense. The trainer writes the manifest next to the PEFT files; every
loader (transformers backend, engine backend, reviewer server, eval) calls `check_adapters` first.

The base model's identity is `base_sha256`: the sha256 of the GGUF the base came from (for a model
that `calora models fetch` converted, the GGUF it converted, recorded in its `calora-base.json`), or of
the weights files of any other folder (see `reviewers.models.base_weights_sha256`). The GGUF hash is
the published artefact's hash, so it stays the same across transformers versions and conversions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from reviewers.models import BaseModelRef, base_weights_sha256

log = logging.getLogger(__name__)

MANIFEST_FILE = "calora-manifest.json"


class AdapterManifest(BaseModel):
    """What a reviewer adapter was made from, and where the evidence that it works lies."""

    model_config = ConfigDict(extra="ignore")

    reviewer: str
    base_model: str = Field(description="The base model's name (a known name, a path or a hub id).")
    base_sha256: str | None = Field(description="The base weights' identity; None when unknown (a hub id).")
    rank: int
    lora_alpha: int
    target_modules: list[str] | str
    eval_evidence: str | None = Field(
        default=None, description="Path (relative to the adapter folder) of the eval report that promoted it."
    )


class AdapterBaseMismatchError(ValueError):
    """An adapter trained on another base model than the one being loaded."""


def write_manifest(folder: Path, manifest: AdapterManifest) -> Path:
    path = folder / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> AdapterManifest | None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    return AdapterManifest.model_validate_json(path.read_text(encoding="utf-8"))


def _short(sha: str | None) -> str:
    return f"sha256 {sha[:12]}…" if sha else "sha256 unknown"


def check_adapter(name: str, folder: Path, base: BaseModelRef) -> AdapterManifest | None:
    """Raise `AdapterBaseMismatchError` when `folder`'s manifest names other base weights than `base`.

    An adapter without a manifest (made before manifests, or by hand) is loaded with a warning; the
    loaders' shape checks still refuse one made for a model of another size.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        log.warning("adapter %s (%s) has no %s: its base model cannot be checked", name, folder,
                    MANIFEST_FILE)
        return None
    served = base_weights_sha256(base)
    if manifest.base_sha256 and served and manifest.base_sha256 != served:
        raise AdapterBaseMismatchError(
            f"adapter {name!r} ({folder}) was trained on base model {manifest.base_model} "
            f"({_short(manifest.base_sha256)}), but the base model loaded is {base.describe()} "
            f"({_short(served)}); "
            f"pass --base-model {manifest.base_model} or retrain the adapter on this base"
        )
    if not (manifest.base_sha256 and served):
        log.warning("adapter %s: cannot compare base weights (%s trained on %s, loading %s)", name,
                    _short(manifest.base_sha256), manifest.base_model, base.describe())
    return manifest


def check_adapters(adapters: Mapping[str, Path], base: BaseModelRef) -> None:
    """`check_adapter` for each reviewer → adapter folder; the first mismatch raises."""
    for name, folder in adapters.items():
        check_adapter(name, Path(folder), base)
