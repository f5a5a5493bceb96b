"""The eval shell: load cases and models, run, write results, record history. Used by `calora eval ...`.

Everything here is I/O around the pure parts (`eval.cases` parsing, `eval.metrics` scoring).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.cases import EvalCase, load_cases
from eval.generation import BackendReviewModel, ChatModel, ReviewModel, TransformersModel
from eval.history import ScoreHistory
from eval.results import Decoding, EvalRunResult, RunInfo
from eval.runner import evaluate, git_commit, markdown_table
from reviewers.models import DEFAULT_MAX_NEW_TOKENS

log = logging.getLogger(__name__)


class WorkflowError(RuntimeError):
    """An eval that cannot run as asked; the message says what to change."""


@dataclass
class EvalSpec:
    """What `calora eval run` was asked to do."""

    cases: Path
    reviewers: list[str] | None = None
    limit: int | None = None
    adapter: Path | None = None
    adapters: Path | None = None
    backend: str = "transformers"
    base_model: str | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    batch_size: int = 1
    device: str = "auto"
    dtype: str = "auto"
    decoding: str = "raw"
    label: str | None = None
    out: Path = Path("build/eval")
    history: Path | None = None
    record_history: bool = True
    command: str | None = None
    model: ReviewModel | None = None  # an already-built model (tests, sweeps); skips loading


@dataclass
class EvalOutcome:
    runs: list[EvalRunResult]
    markdown: str
    paths: list[Path] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)


def decodings_for(choice: str) -> list[Decoding]:
    return {"raw": ["raw"], "constrained": ["constrained"], "both": ["raw", "constrained"]}[choice]  # type: ignore[return-value]


def limit_per_reviewer(cases: list[EvalCase], limit: int | None) -> list[EvalCase]:
    if limit is None:
        return cases
    counts: dict[str, int] = {}
    kept = []
    for case in sorted(cases, key=lambda c: c.id):
        if counts.get(case.reviewer, 0) < limit:
            kept.append(case)
            counts[case.reviewer] = counts.get(case.reviewer, 0) + 1
    return kept


def adapter_map(adapter: Path | None, adapters: Path | None, reviewers: set[str]) -> dict[str, Path]:
    """`--adapter DIR` → {"*": DIR}; `--adapters DIR` → {reviewer: DIR/reviewer[/adapter]} where one exists."""
    if adapter is not None:
        if not (adapter / "adapter_config.json").is_file():
            raise WorkflowError(f"{adapter}: no adapter_config.json; --adapter takes a PEFT adapter folder "
                                "(e.g. runs/<name>/adapter or runs/<name>/checkpoints/step-N/adapter)")
        return {"*": adapter}
    if adapters is None:
        return {}
    if not adapters.is_dir():
        raise WorkflowError(f"{adapters}: not a folder; --adapters takes a folder of <reviewer>/ adapters")
    found = {}
    for reviewer in sorted(reviewers):
        # adapters/<reviewer>/ (installed) or runs/<name>/<reviewer>/adapter/ (a `calora train --all` run)
        for folder in (adapters / reviewer, adapters / reviewer / "adapter"):
            if (folder / "adapter_config.json").is_file():
                found[reviewer] = folder
                break
    missing = sorted(reviewers - set(found))
    if missing:
        log.warning("no adapter in %s for %s: those reviewers are evaluated on the base model",
                    adapters, ", ".join(missing))
    if not found:
        raise WorkflowError(f"{adapters}: holds no <reviewer>/adapter_config.json for {', '.join(sorted(reviewers))}")
    return found


def describe_base(base_model: str | None) -> str:
    from reviewers.models import resolve_base_model

    try:
        return resolve_base_model(base_model).describe()
    except Exception:  # noqa: BLE001 - only a label; loading reports the real error
        return base_model or "default"


def load_review_model(spec: EvalSpec, adapters: dict[str, Path], decoding: Decoding) -> ReviewModel:
    """The model the spec names; `transformers` exposes raw text and tokens, others go through `review`."""
    if spec.backend == "transformers":
        return TransformersModel.load(spec.base_model, device=spec.device, dtype=spec.dtype,
                                      max_new_tokens=spec.max_new_tokens, adapters=adapters)
    if spec.backend == "engine":
        from eval.engine_model import EngineReviewModel

        return EngineReviewModel.load(spec.base_model, adapters, max_new_tokens=spec.max_new_tokens,
                                      device=spec.device, dtype=spec.dtype)
    from reviewers.backends.factory import BackendSettings, make_backend

    if "*" in adapters:
        raise WorkflowError(f"--adapter works with the transformers and engine backends; for {spec.backend} "
                            "use --adapters with a folder of <reviewer>/ adapters")
    settings = BackendSettings(backend=spec.backend, base_model=spec.base_model, max_new_tokens=spec.max_new_tokens,
                               device=spec.device,
                               **({"adapters_dir": spec.adapters} if spec.adapters else {}))
    try:
        backend = make_backend(settings)
    except (ImportError, ValueError, RuntimeError) as exc:
        raise WorkflowError(f"cannot build the {spec.backend} backend: {exc}") from exc
    return BackendReviewModel(backend, constrained=None)


def run_eval(spec: EvalSpec) -> EvalOutcome:
    """Evaluate one model over the spec's cases in each decoding asked; write results; record history."""
    if spec.model is None and spec.backend != "engine" and spec.decoding != "raw":
        raise WorkflowError(f"--decoding {spec.decoding} needs the engine's schema constraint: add --backend engine")
    cases = limit_per_reviewer(load_cases(spec.cases, spec.reviewers), spec.limit)
    reviewers = {c.reviewer for c in cases}
    adapters = adapter_map(spec.adapter, spec.adapters, reviewers)
    label = spec.label or ("base" if not adapters else "adapter")
    adapter_text = str(spec.adapter or spec.adapters) if adapters else None
    history = ScoreHistory(spec.history) if spec.record_history else None
    outcome = EvalOutcome(runs=[], markdown="")
    model = spec.model
    for decoding in decodings_for(spec.decoding):
        if model is None:
            model = load_review_model(spec, adapters, decoding)
        info = RunInfo(
            label=label, base_model=describe_base(spec.base_model) if spec.model is None else model.name,
            adapter=adapter_text, backend=spec.backend, decoding=decoding, cases_path=str(spec.cases),
            max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size, git_commit=git_commit(),
            command=spec.command,
            device=getattr(model, "device", None) and str(model.device),
            dtype=getattr(model, "dtype", None),
        )
        result = evaluate(model, cases, info)
        path = result.write(spec.out / f"{_slug(label)}.{decoding}.json")
        outcome.runs.append(result)
        outcome.paths.append(path)
        if history is not None:
            outcome.run_ids.append(history.record(result, path))
    outcome.markdown = "\n".join(markdown_table(r) for r in outcome.runs)
    md = spec.out / f"{_slug(label)}.md"
    md.write_text(outcome.markdown, encoding="utf-8")
    outcome.paths.append(md)
    return outcome


def _slug(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)


# --- sweeps over a training run -------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    """One evaluable adapter of a training run."""

    label: str
    step: int | None
    adapter: Path | None  # None = the base model


@dataclass(frozen=True)
class TrainingRun:
    """What eval needs from a `runs/<name>/` folder (see training/train.py for the layout)."""

    run_dir: Path
    reviewer: str
    base_model: str
    data_dir: Path
    checkpoints: list[Checkpoint]


def read_training_run(run_dir: Path) -> TrainingRun:
    """The reviewer, base model, data and every checkpoint adapter (plus the final one) of a run."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise WorkflowError(f"{run_dir}: no config.json; is this a training run folder (runs/<name>/)?")
    config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    base = str(config.get("base_model", ""))
    if config.get("gguf_file"):
        base = str(Path(base) / config["gguf_file"])
    checkpoints = []
    for folder in sorted(run_dir.glob("checkpoints/step-*"), key=lambda p: _step_of(p.name)):
        if (folder / "adapter" / "adapter_config.json").is_file() and (folder / "state.json").is_file():
            checkpoints.append(Checkpoint(folder.name, _step_of(folder.name), folder / "adapter"))
    total = config.get("resolved", {}).get("total_steps")
    final = run_dir / "adapter"
    if (final / "adapter_config.json").is_file() and not any(c.step == total for c in checkpoints):
        checkpoints.append(Checkpoint("final", total, final))
    if not checkpoints:
        raise WorkflowError(f"{run_dir}: no checkpoints/step-N/adapter/ and no adapter/ to evaluate yet")
    data_dir = Path(config.get("data_dir", "build/data"))
    return TrainingRun(run_dir, str(config["reviewer"]), base, data_dir, checkpoints)


def _step_of(name: str) -> int:
    try:
        return int(name.removeprefix("step-"))
    except ValueError:
        return -1


def training_runs_under(run_dir: Path) -> list[TrainingRun]:
    """A run folder, or a folder of per-reviewer run folders (`calora train --all`)."""
    if (run_dir / "config.json").is_file():
        return [read_training_run(run_dir)]
    runs = [read_training_run(p) for p in sorted(run_dir.iterdir()) if (p / "config.json").is_file()] \
        if run_dir.is_dir() else []
    if not runs:
        raise WorkflowError(f"{run_dir}: not a training run folder (no config.json in it or its sub-folders)")
    return runs


def sweep(run_dir: Path, *, cases: Path | None = None, include_base: bool = False, backend: str = "transformers",
          base_model: str | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 1, device: str = "auto",
          dtype: str = "auto", decoding: str = "raw",
          out: Path | None = None, history: Path | None = None, record_history: bool = True,
          command: str | None = None, model: TransformersModel | None = None) -> EvalOutcome:
    """Evaluate every checkpoint (and optionally the base) of each training run under `run_dir`."""
    if backend != "transformers":
        raise WorkflowError("eval sweep loads checkpoints in process; use --backend transformers")
    store = ScoreHistory(history) if record_history else None
    outcome = EvalOutcome(runs=[], markdown="")
    for run in training_runs_under(run_dir):
        case_path = cases or run.data_dir / run.reviewer / "eval.jsonl"
        run_cases = load_cases(case_path, [run.reviewer])
        base = base_model or run.base_model
        targets = ([Checkpoint("base", 0, None)] if include_base else []) + run.checkpoints
        current = model or TransformersModel.load(base, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
        for checkpoint in targets:
            current = current.with_adapters({run.reviewer: checkpoint.adapter} if checkpoint.adapter else {})
            for mode in decodings_for(decoding):
                info = RunInfo(
                    label=checkpoint.label, base_model=base, adapter=str(checkpoint.adapter) if checkpoint.adapter else None,
                    backend=backend, decoding=mode, cases_path=str(case_path), max_new_tokens=max_new_tokens,
                    batch_size=batch_size,
                    training_run=str(run.run_dir.resolve()), checkpoint=checkpoint.label, step=checkpoint.step,
                    git_commit=git_commit(), command=command, device=str(current.device), dtype=current.dtype,
                )
                result = evaluate(current, run_cases, info)
                folder = out or run.run_dir / "eval"
                path = result.write(folder / f"{run.reviewer}.{checkpoint.label}.{mode}.json")
                outcome.runs.append(result)
                outcome.paths.append(path)
                if store is not None:
                    outcome.run_ids.append(store.record(result, path))
        current.close()
    outcome.markdown = "\n".join(markdown_table(r) for r in outcome.runs)
    return outcome


# --- chat models for the style gate ---------------------------------------------------------------

def load_chat_model(backend: str, base_model: str | None, adapter: Path | None, max_new_tokens: int,
                    device: str, dtype: str = "auto") -> ChatModel:
    if backend == "transformers":
        adapters = {"*": adapter} if adapter else {}
        return TransformersModel.load(base_model, device=device, dtype=dtype, max_new_tokens=max_new_tokens,
                                      adapters=adapters)
    if backend == "openai":
        from eval.generation import OpenAIChatModel
        from reviewers.backends.factory import BackendSettings

        settings = BackendSettings(backend="openai")
        if not settings.openai_base_url:
            raise WorkflowError("set CALORA_OPENAI_BASE_URL to the OpenAI-compatible server for --backend openai")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIChatModel(settings.openai_base_url, model=base_model or "default",
                               api_key=key, max_new_tokens=max_new_tokens)
    raise WorkflowError(f"the style gate talks to a model through transformers or openai, not {backend}")
