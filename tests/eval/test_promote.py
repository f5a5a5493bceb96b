"""Sweeping a training run's checkpoints, then promoting (or refusing) from the score history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from eval.cases import load_cases
from eval.generation import TransformersModel
from eval.history import ScoreHistory
from eval.promote import PromotionError, install_adapter, promote_run
from eval.results import RunInfo
from eval.runner import evaluate
from eval.workflow import read_training_run, sweep
from tests.eval.conftest import APPROVE_ANSWER, BLOCK_ANSWER, ScriptedReviewModel


def test_a_training_run_lists_its_checkpoints_and_skips_a_final_adapter_equal_to_the_last(
    tiny_training_run: Path,
) -> None:
    run = read_training_run(tiny_training_run)
    assert run.reviewer == "python"
    assert [(c.label, c.step) for c in run.checkpoints] == [("step-2", 2), ("step-4", 4)]
    (tiny_training_run / "checkpoints" / "step-4").rename(tiny_training_run / "step-4-moved")
    assert [(c.label, c.step) for c in read_training_run(tiny_training_run).checkpoints] == [
        ("step-2", 2), ("final", 4)]


def test_sweep_evaluates_every_checkpoint_into_the_history(
    tiny_training_run: Path, scenario_dir: Path, tiny_model: TransformersModel, tmp_path: Path,
) -> None:
    history = tmp_path / "history.sqlite"
    outcome = sweep(tiny_training_run, cases=scenario_dir, include_base=True, history=history, model=tiny_model,
                    out=tmp_path / "sweep")
    assert [r.info.label for r in outcome.runs] == ["base", "step-2", "step-4"]
    points = ScoreHistory(history).checkpoint_metrics(tiny_training_run, "python")
    assert [(p.checkpoint, p.step) for p in points] == [("base", 0), ("step-2", 2), ("step-4", 4)]
    assert points[1].adapter == str(tiny_training_run / "checkpoints" / "step-2" / "adapter")
    # the adapters really were applied: random LoRA weights change the random model's text
    texts = {r.info.label: [c.raw for c in r.results] for r in outcome.runs}
    assert texts["step-2"] != texts["base"] and texts["step-4"] != texts["step-2"]


def test_promote_refuses_when_no_checkpoint_passes_and_lists_the_failing_metrics(
    tiny_training_run: Path, scenario_dir: Path, tiny_model: TransformersModel, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    history = tmp_path / "history.sqlite"
    sweep(tiny_training_run, cases=scenario_dir, history=history, model=tiny_model, out=tmp_path / "sweep")
    adapters = tmp_path / "adapters"
    code = main(["promote", str(tiny_training_run), "--history", str(history), "--adapters-dir", str(adapters)])
    out = capsys.readouterr().out
    assert code == 1
    assert "python: refused: no checkpoint passes every gate" in out
    assert "step-2: " in out and "raw_validity 0 (needs >= 0.9)" in out and "verdict_accuracy 0 (needs >= 0.7)" in out
    assert not adapters.exists()
    (record,) = ScoreHistory(history).promotions()
    assert not record.promoted and record.evidence["decision"]["chosen"] is None
    (evidence,) = (tmp_path / "promotions").glob("*-python.json")
    assert json.loads(evidence.read_text())["promoted"] is False


def record_scripted_checkpoint(history: Path, run_dir: Path, label: str, step: int, cases: list, texts: dict) -> None:
    info = RunInfo(label=label, base_model="tiny", backend="scripted", cases_path="scenarios",
                   training_run=str(run_dir), checkpoint=label, step=step,
                   adapter=str(run_dir / "checkpoints" / label / "adapter"))
    ScoreHistory(history).record(evaluate(ScriptedReviewModel(texts), cases, info, progress=False))


GOOD = {"block": BLOCK_ANSWER, "clean": APPROVE_ANSWER}


def test_promote_installs_the_earlier_of_two_tied_checkpoints_and_records_why(
    tiny_training_run: Path, scenario_dir: Path, tmp_path: Path,
) -> None:
    history, adapters = tmp_path / "history.sqlite", tmp_path / "adapters"
    cases = load_cases(scenario_dir)
    record_scripted_checkpoint(history, tiny_training_run, "step-2", 2, cases, GOOD)
    record_scripted_checkpoint(history, tiny_training_run, "step-4", 4, cases, GOOD)
    (outcome,) = promote_run(tiny_training_run, history_path=history, adapters_dir=adapters)
    assert outcome.decision.promoted and outcome.decision.chosen.checkpoint == "step-2"
    installed = adapters / "python"
    assert outcome.installed_to == installed
    assert sorted(p.name for p in installed.iterdir()) == ["README.md", "adapter_config.json",
                                                           "adapter_model.safetensors", "promotion.json"]
    source = tiny_training_run / "checkpoints" / "step-2" / "adapter" / "adapter_model.safetensors"
    from safetensors.torch import load_file  # the step-2 weights, in bf16 (write_bf16)

    shipped, trained = load_file(str(installed / "adapter_model.safetensors")), load_file(str(source))
    assert all(shipped[k].equal(v.to(shipped[k].dtype)) for k, v in trained.items()) and shipped.keys() == trained.keys()
    provenance = json.loads((installed / "promotion.json").read_text())
    assert provenance["checkpoint"] == "step-2" and provenance["metrics"]["verdict_accuracy"] == 1.0
    (record,) = ScoreHistory(history).promotions(reviewer="python")
    assert record.promoted and record.checkpoint == "step-2" and record.installed_to == str(installed)
    assert set(record.evidence["eval_run_ids"]) == {"step-2", "step-4"}


def test_promote_prefers_the_better_checkpoint_over_the_earlier_one(
    tiny_training_run: Path, scenario_dir: Path, tmp_path: Path,
) -> None:
    history = tmp_path / "history.sqlite"
    cases = load_cases(scenario_dir)
    # step-2 misses the blocker's finding (passes the gates through verdicts but scores lower)
    weaker = {"block": BLOCK_ANSWER.replace('"line": 54', '"line": 90'), "clean": APPROVE_ANSWER}
    record_scripted_checkpoint(history, tiny_training_run, "step-2", 2, cases, weaker)
    record_scripted_checkpoint(history, tiny_training_run, "step-4", 4, cases, GOOD)
    gates = tmp_path / "gates.yml"
    gates.write_text("defaults:\n  verdict_accuracy: {min: 0.5}\nrank_by: [pass_rate]\n", encoding="utf-8")
    (outcome,) = promote_run(tiny_training_run, gates_path=gates, history_path=history,
                             adapters_dir=tmp_path / "adapters", dry_run=True)
    assert outcome.decision.chosen.checkpoint == "step-4"
    assert outcome.installed_to is None and not (tmp_path / "adapters").exists()  # dry run


def test_promote_without_an_evaluation_says_to_sweep_first(tiny_training_run: Path, tmp_path: Path) -> None:
    with pytest.raises(PromotionError, match="run `calora eval sweep"):
        promote_run(tiny_training_run, history_path=tmp_path / "h.sqlite", adapters_dir=tmp_path / "a")


def test_installing_replaces_a_previous_adapter_whole(tiny_training_run: Path, tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    (adapters / "python").mkdir(parents=True)
    (adapters / "python" / "stale.bin").write_text("old")
    install_adapter(tiny_training_run / "adapter", adapters, "python", {"checkpoint": "final"})
    assert not (adapters / "python" / "stale.bin").exists()
    assert (adapters / "python" / "adapter_config.json").is_file()
    assert sorted(p.name for p in adapters.iterdir()) == ["python"]


def test_an_installed_adapter_ships_in_bf16_and_loads_to_the_same_tensors(tiny_training_run: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    source = tiny_training_run / "adapter" / "adapter_model.safetensors"
    installed = install_adapter(tiny_training_run / "adapter", tmp_path / "adapters", "python", {})
    trained, shipped = load_file(str(source)), load_file(str(installed / "adapter_model.safetensors"))
    assert trained.keys() == shipped.keys() and trained
    for key, tensor in trained.items():
        assert tensor.dtype == torch.float32 and shipped[key].dtype == torch.bfloat16
        assert torch.equal(tensor.to(torch.bfloat16), shipped[key])
    assert (installed / "adapter_model.safetensors").stat().st_size < 0.7 * source.stat().st_size  # tensors halve; the header stays


def test_installing_an_incomplete_adapter_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{}")
    with pytest.raises(PromotionError, match="not a complete PEFT adapter"):
        install_adapter(tmp_path / "broken", tmp_path / "adapters", "python", {})
    assert not (tmp_path / "adapters").exists()


def test_eval_sweep_command_records_every_checkpoint(
    tiny_training_run: Path, scenario_dir: Path, tiny_model: TransformersModel, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(TransformersModel, "load", staticmethod(lambda *a, **k: tiny_model))
    history = tmp_path / "h.sqlite"
    code = main(["eval", "sweep", str(tiny_training_run), "--cases", str(scenario_dir), "--history", str(history)])
    assert code == 0 and "### step-4" in capsys.readouterr().out
    runs = ScoreHistory(history).runs(training_run=tiny_training_run)
    assert [(r.checkpoint, r.step) for r in runs] == [("step-2", 2), ("step-4", 4)]
    assert runs[0].command.startswith(f"calora eval sweep {tiny_training_run}")
    assert (tiny_training_run / "eval" / "python.step-4.raw.json").is_file()


def test_eval_sweep_of_a_folder_that_is_not_a_run_is_an_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "sweep", str(tmp_path), "--no-history"]) == 2
    assert "not a training run folder" in capsys.readouterr().err
