"""Training runs, charts, gates and the role map, each from its own inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.console.charts import Point, Series, line_chart
from app.console.outcomes import find_run_folders, gate_cell, gate_table, load_gates, training_runs
from app.console.roles import egress_of, role_map, summarize_roles
from app.console.settings import ConsoleSettings
from app.settings import Settings
from eval.gates import Threshold
from reviewers.backends.factory import BackendSettings


def write_run(folder: Path, reviewer: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps({"reviewer": reviewer, "base_model": "m", "resolved": {"total_steps": 4}})
    )
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "checkpoints" / "step-2").mkdir(parents=True)
    (folder / "checkpoints" / "step-2" / "state.json").write_text("{}")
    (folder / "checkpoints" / "step-3.tmp").mkdir()  # an interrupted save is not a checkpoint
    return folder


def test_training_runs_are_found_below_the_runs_folder_and_bad_lines_are_reported(tmp_path: Path) -> None:
    write_run(
        tmp_path / "train" / "python",
        "python",
        [
            '{"step": 1, "loss": 2.0, "tokens_per_s": 100}',
            "not json",
            '{"step": 2}',
            '{"step": 2, "loss": 1.5, "tokens_per_s": 140}',
        ],
    )
    (tmp_path / "notes").mkdir()
    assert find_run_folders(tmp_path) == [tmp_path / "train" / "python"]
    [run] = training_runs(tmp_path)
    assert (run.name, run.reviewer, run.steps_done, run.total_steps) == ("train/python", "python", 2, 4)
    assert (run.first_loss, run.last_loss, run.tokens_per_s, run.checkpoints) == (2.0, 1.5, 120.0, [2])
    assert run.problems == [
        "metrics.jsonl line 2 is not JSON",
        "metrics.jsonl line 3 has no numeric step and loss",
    ]
    assert run.loss_svg.startswith("<svg") and "python: training loss" in run.loss_svg


def test_a_missing_runs_folder_has_no_runs(tmp_path: Path) -> None:
    assert training_runs(tmp_path / "nowhere") == []


def test_charts_escape_their_text_and_say_when_there_is_no_data() -> None:
    svg = line_chart(
        [Series(name="<b>loss</b>", points=[Point(x=1, y=2.0), Point(x=2, y=1.0)], marker=2)],
        title="a & b",
        x_label="step",
        y_label="loss",
    )
    assert "<b>" not in svg and "&lt;b&gt;loss&lt;/b&gt;" in svg and "a &amp; b" in svg
    assert svg.count("<circle") == 2 and "promoted" in svg
    empty = line_chart([], title="scores", x_label="step", y_label="score")
    assert "no data yet" in empty


def test_long_series_are_drawn_as_lines_without_dots() -> None:
    svg = line_chart(
        [Series(name="loss", points=[Point(x=i, y=1 / (i + 1)) for i in range(100)])],
        title="t",
        x_label="step",
        y_label="loss",
    )
    assert "<circle" not in svg and "<path" in svg


@pytest.mark.parametrize(
    ("value", "threshold", "state"),
    [
        (0.95, Threshold(min=0.9), "pass"),
        (0.85, Threshold(min=0.9), "fail"),
        (0.3, Threshold(max=0.2), "fail"),
        (None, Threshold(min=0.9), "fail"),  # unmeasured fails a required gate, as `calora promote` decides
        (None, Threshold(min=1.0, required=False), "no value"),
        (0.5, None, "no gate"),
    ],
)
def test_gate_cells_agree_with_evals_check(
    value: float | None, threshold: Threshold | None, state: str
) -> None:
    assert gate_cell("m", value, threshold).state == state


def test_a_broken_gates_file_is_named_and_colours_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "gates.yml"
    broken.write_text("defaults:\n  not_a_metric: {min: 1}\n")
    loaded = load_gates(broken)
    assert loaded.gates is None and "not used" in loaded.source and "not_a_metric" in loaded.source
    assert "missing" in load_gates(tmp_path / "absent.yml").source
    assert load_gates(None).gates is not None  # eval's own eval/gates.yml


def test_promotion_evidence_of_another_shape_is_shown_as_json() -> None:
    assert gate_table({"why": "hand-written"}) is None


@pytest.mark.parametrize(
    ("url", "egress"),
    [
        (None, "no"),
        ("http://127.0.0.1:8001/v1", "no"),
        ("http://localhost:8001/v1", "no"),
        ("http://[::1]:8001/v1", "no"),
        ("http://10.1.2.3:8000/v1", "local network"),
        ("http://gpu-box:8000/v1", "local network"),
        ("http://reviewer.internal/v1", "local network"),
        ("https://api.openai.com/v1", "yes"),
        ("https://8.8.8.8/v1", "yes"),
    ],
)
def test_whether_code_leaves_the_machine_follows_the_endpoint(url: str | None, egress: str) -> None:
    assert egress_of(url)[0] == egress


def test_an_openai_reviewer_server_and_a_cloud_fallback_show_where_code_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CALORA_CLOUD_REVIEWERS",
        json.dumps(
            {
                "docker_ci": {
                    "base_url": "https://api.openai.com/v1",
                    "model": "gpt-4o-mini",
                    "api_key_env": "OPENAI_API_KEY",
                }
            }
        ),
    )
    settings = Settings(
        reviewer=BackendSettings(backend="openai", openai_base_url="http://10.0.0.7:8000/v1", adapters_dir=tmp_path)
    )
    console = ConsoleSettings(
        patch_author_model="gemma-3-27b", patch_author_base_url="http://127.0.0.1:9000/v1"
    )
    rows = role_map(settings, console)
    roles = {r.role: r for r in rows}
    assert summarize_roles(rows, settings).leaves == ["cloud fallback: docker_ci"]
    python = roles["reviewer: python"]
    assert (python.endpoint, python.adapter, python.code_leaves_machine) == (
        "http://10.0.0.7:8000/v1",
        "python",
        "local network",
    )
    cloud = roles["cloud fallback: docker_ci"]
    assert (cloud.endpoint, cloud.base_model, cloud.code_leaves_machine) == (
        "https://api.openai.com",
        "gpt-4o-mini",
        "yes",
    )
    author = roles["patch author"]
    assert (author.base_model, author.code_leaves_machine) == ("gemma-3-27b", "no")
    assert roles["GitHub (diffs in, reviews out)"].code_leaves_machine == "yes"


def test_a_cloud_fallback_is_inactive_for_a_reviewer_with_a_local_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "adapter_config.json").write_text(
        json.dumps({"r": 8, "lora_alpha": 16, "target_modules": ["v_proj", "q_proj"]})
    )
    monkeypatch.setenv(
        "CALORA_CLOUD_REVIEWERS",
        json.dumps(
            {
                "sql": {"base_url": "https://api.example.com/v1", "model": "m"},
                "vue": {"base_url": "https://api.example.com/v1", "model": "m"},
            }
        ),
    )
    roles = {
        r.role: r
        for r in role_map(
            Settings(reviewer=BackendSettings(backend="engine", adapters_dir=tmp_path)), ConsoleSettings()
        )
    }
    assert roles["reviewer: sql"].adapter_detail == "LoRA r=8 alpha=16 on q_proj, v_proj"
    assert roles["cloud fallback: sql"].code_leaves_machine == "no"
    assert "inactive now" in roles["cloud fallback: sql"].why
    assert roles["cloud fallback: vue"].code_leaves_machine == "yes"
    assert "active now" in roles["cloud fallback: vue"].why
