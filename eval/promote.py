"""`calora promote RUN_DIR`: decide from the score history, install the chosen adapter, record why.

The decision itself is `eval.gates.decide` (pure). This shell gathers the candidates of a training run
from the history (filled by `calora eval sweep RUN_DIR`), installs the winner as
`<adapters_dir>/<reviewer>/` (the PEFT files, swapped in atomically, plus a `promotion.json`), and records
every decision, promoted or refused, in the history and as a JSON file beside it
(`<history folder>/promotions/<time>-<reviewer>.json`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eval.gates import DEFAULT_GATES, Candidate, PromotionDecision, decide, load_gates
from eval.history import PromotionRecord, ScoreHistory
from eval.metrics import metric_values
from eval.results import EvalRunResult, ReviewerMetrics
from eval.workflow import WorkflowError, training_runs_under
from reviewers.adapter_manifest import read_manifest, write_manifest

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md")


class PromotionError(RuntimeError):
    """Promotion cannot be decided (nothing evaluated) or the install failed; nothing was changed."""


@dataclass
class PromotionOutcome:
    decision: PromotionDecision
    installed_to: Path | None
    record_path: Path | None
    skipped: list[str]

    def summary(self) -> str:
        text = self.decision.explain()
        if self.installed_to is not None:
            text += f"\n  installed {self.installed_to}"
        if self.skipped:
            text += "\n  not considered (adapter folder gone): " + ", ".join(self.skipped)
        if self.record_path is not None:
            text += f"\n  evidence {self.record_path}"
        return text


def write_bf16(source: Path, target: Path) -> None:
    """Copy safetensors weights with floating tensors in bf16: an installed adapter ships at half the size
    of the trainer's fp32 LoRA weights (eight r-8 Gemma 3 270M adapters: ~30 MB instead of ~61 MB), and
    every loader casts them to its compute dtype."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:  # one read: the tensors and their metadata
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safetensors' API, not a dict
    cast = {key: t.to(torch.bfloat16) if t.is_floating_point() else t for key, t in tensors.items()}
    save_file(cast, str(target), metadata=metadata)


def install_adapter(source: Path, adapters_dir: Path, reviewer: str, provenance: dict) -> Path:
    """Copy the PEFT files of `source` to `<adapters_dir>/<reviewer>/` (weights in bf16, `write_bf16`),
    replacing any previous one whole."""
    files = [source / name for name in ADAPTER_FILES if (source / name).is_file()]
    if not (source / "adapter_config.json").is_file() or len(files) < 2:
        raise PromotionError(f"{source}: not a complete PEFT adapter (adapter_config.json + weights)")
    adapters_dir.mkdir(parents=True, exist_ok=True)
    target = adapters_dir / reviewer
    staging = adapters_dir / f".{reviewer}.incoming"
    old = adapters_dir / f".{reviewer}.previous"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for path in files:
        if path.name == "adapter_model.safetensors":
            write_bf16(path, staging / path.name)
        else:
            shutil.copy2(path, staging / path.name)
    (staging / "promotion.json").write_text(json.dumps(provenance, indent=2, default=str), encoding="utf-8")
    manifest = read_manifest(source)  # the base it was trained on travels with it; the evidence is added
    if manifest is not None:
        write_manifest(staging, manifest.model_copy(update={"eval_evidence": "promotion.json"}))
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def promote_run(run_dir: Path, *, gates_path: Path | None = None, history_path: Path | None = None,
                adapters_dir: Path = Path("adapters"), dry_run: bool = False) -> list[PromotionOutcome]:
    """Decide, install and record for each reviewer's run under `run_dir`."""
    gates = load_gates(gates_path)
    history = ScoreHistory(history_path)
    try:
        runs = training_runs_under(run_dir)
    except WorkflowError as exc:
        raise PromotionError(str(exc)) from exc
    outcomes = []
    for run in runs:
        evaluated = [c for c in history.checkpoint_metrics(run.run_dir, run.reviewer) if c.checkpoint != "base"]
        if not evaluated:
            raise PromotionError(f"{run.run_dir}: no evaluated checkpoint of {run.reviewer} in {history.path}; "
                                 f"run `calora eval sweep {run.run_dir}` first")
        candidates, skipped, evidence_runs = [], [], {}
        for entry in evaluated:
            if entry.adapter is None or not (Path(entry.adapter) / "adapter_config.json").is_file():
                skipped.append(entry.checkpoint)
                continue
            candidates.append(Candidate(checkpoint=entry.checkpoint, step=entry.step, adapter=entry.adapter,
                                        metrics=metric_values(entry.by_decoding)))
            evidence_runs[entry.checkpoint] = entry.run_ids
        decision = decide(run.reviewer, candidates, gates)
        evidence = {
            "decision": decision.model_dump(mode="json"),
            "gates_file": str(gates_path or DEFAULT_GATES),
            "thresholds": {m: t.model_dump() for m, t in gates.thresholds_for(run.reviewer).items()},
            "eval_run_ids": evidence_runs,
            "skipped_missing_adapter": skipped,
            "history": str(history.path),
        }
        installed = None
        record_path = None
        if not dry_run:
            if decision.chosen is not None:
                installed = install_adapter(Path(decision.chosen.adapter or ""), adapters_dir, run.reviewer, {
                    "training_run": str(run.run_dir.resolve()), "checkpoint": decision.chosen.checkpoint,
                    "step": decision.chosen.step, "source": decision.chosen.adapter,
                    "metrics": decision.chosen.metrics, "promoted_at": datetime.now(UTC).isoformat(),
                })
            record = PromotionRecord(
                training_run=str(run.run_dir), reviewer=run.reviewer, promoted=decision.promoted,
                checkpoint=decision.chosen.checkpoint if decision.chosen else None,
                step=decision.chosen.step if decision.chosen else None,
                installed_to=str(installed) if installed else None, evidence=evidence,
            )
            record.id = history.record_promotion(record)
            folder = history.path.parent / "promotions"
            folder.mkdir(parents=True, exist_ok=True)
            stamp = record.created_at.strftime("%Y%m%dT%H%M%S%fZ")
            record_path = folder / f"{stamp}-{run.reviewer}.json"
            record_path.write_text(record.model_dump_json(indent=2), encoding="utf-8")
        outcomes.append(PromotionOutcome(decision, installed, record_path, skipped))
    return outcomes


def candidates_from_results(runs: list[EvalRunResult]) -> dict[str, list[Candidate]]:
    """Per reviewer, one candidate per model label, merging its raw and constrained results files."""
    by_label: dict[str, dict[str, dict[str, ReviewerMetrics]]] = {}
    order: list[str] = []
    for run in runs:
        if run.info.label not in by_label:
            order.append(run.info.label)
        for reviewer, metrics in run.reviewers.items():
            by_label.setdefault(run.info.label, {}).setdefault(reviewer, {})[metrics.decoding] = metrics
    out: dict[str, list[Candidate]] = {}
    for index, label in enumerate(order):
        for reviewer, by_decoding in by_label[label].items():
            out.setdefault(reviewer, []).append(
                Candidate(checkpoint=label, step=index, metrics=metric_values(by_decoding)))
    return out


def check_results(paths: list[Path], gates_path: Path | None = None) -> list[PromotionDecision]:
    """The gate decision for models evaluated by `calora eval run` (results JSONs), without installing."""
    gates = load_gates(gates_path)
    runs = []
    for path in paths:
        try:
            runs.append(EvalRunResult.read(path))
        except (OSError, ValueError) as exc:
            raise PromotionError(f"{path}: not a results JSON of `calora eval run`: {exc}") from exc
    return [decide(reviewer, candidates, gates)
            for reviewer, candidates in sorted(candidates_from_results(runs).items())]
