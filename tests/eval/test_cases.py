"""Both case formats load into the same cases; bad case files fail with the file and field named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.cases import CaseError, load_cases
from reviewers.contract import Verdict
from tests.eval.conftest import BLOCK_EXAMPLE, CLEAN_EXAMPLE


def test_scenario_folders_load_with_their_expectations(scenario_dir: Path) -> None:
    cases = load_cases(scenario_dir)
    assert [c.id for c in cases] == ["python/card-numbers-logged", "python/worker-except-clean"]
    block = cases[0]
    assert block.verdict == Verdict.block and block.reviewer == "python"
    assert block.must_find[0].path == "payments/charge.py" and block.must_find[0].lines == (53, 55)
    assert block.request.diff.startswith("diff --git a/payments/charge.py")
    assert block.request.task == "Log declined payments to debug the new gateway"
    assert cases[1].verdict == Verdict.approve and cases[1].must_find == []


def test_a_single_case_folder_loads(scenario_dir: Path) -> None:
    (case,) = load_cases(scenario_dir / "python" / "card-numbers-logged")
    assert case.id == "python/card-numbers-logged"


@pytest.fixture
def built_data(tmp_path: Path) -> Path:
    """`calora data build` output for two real curated examples, both in the eval split."""
    from training.dataset_build import build_dataset

    examples = tmp_path / "datasets" / "python"
    examples.mkdir(parents=True)
    for path in (BLOCK_EXAMPLE, CLEAN_EXAMPLE):
        shutil.copy(path, examples / path.name)
    build_dataset([tmp_path / "datasets"], tmp_path / "data", eval_fraction=1.0)
    return tmp_path / "data"


def test_eval_jsonl_cases_derive_must_find_from_the_expected_findings(built_data: Path) -> None:
    cases = load_cases(built_data / "python" / "eval.jsonl")
    by_id = {c.id: c for c in cases}
    block = by_id["python/python-031-log-card-number"]
    (must,) = block.must_find
    assert must.path == "payments/charge.py" and must.lines == (53, 55) and must.category == "security"
    assert must.keywords == ["PCI", "DSS", "CVC"]
    assert block.must_not_find_paths == []
    assert by_id["python/python-026-top-level-worker-except"].verdict == Verdict.approve


def test_a_data_build_folder_loads_every_reviewer_and_filters(built_data: Path) -> None:
    assert len(load_cases(built_data)) == 2
    assert len(load_cases(built_data, ["python"])) == 2
    with pytest.raises(CaseError, match="no cases for reviewer.*sql"):
        load_cases(built_data, ["sql"])


def test_a_bad_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CaseError, match=r"eval.jsonl:1: reviewer: missing"):
        load_cases(path)
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(CaseError, match=r"eval.jsonl:1: not JSON"):
        load_cases(path)


def test_a_scenario_with_a_bad_verdict_names_the_field(scenario_dir: Path) -> None:
    expected = scenario_dir / "python" / "card-numbers-logged" / "expected.json"
    data = json.loads(expected.read_text())
    data["verdict"] = "reject"
    expected.write_text(json.dumps(data))
    with pytest.raises(CaseError, match=r"expected.json: verdict: "):
        load_cases(scenario_dir)


def test_a_scenario_with_reversed_lines_is_refused(scenario_dir: Path) -> None:
    expected = scenario_dir / "python" / "card-numbers-logged" / "expected.json"
    data = json.loads(expected.read_text())
    data["must_find"][0]["lines"] = [55, 53]
    expected.write_text(json.dumps(data))
    with pytest.raises(CaseError, match=r"must_find.0.lines"):
        load_cases(scenario_dir)


def test_a_scenario_without_its_diff_is_refused(scenario_dir: Path) -> None:
    (scenario_dir / "python" / "card-numbers-logged" / "diff.patch").unlink()
    with pytest.raises(CaseError, match="diff.patch is missing"):
        load_cases(scenario_dir)


def test_a_scenario_in_another_reviewers_folder_is_refused(scenario_dir: Path) -> None:
    shutil.move(scenario_dir / "python", scenario_dir / "sql")
    with pytest.raises(CaseError, match="reviewer: 'python' but the case is in the folder of 'sql'"):
        load_cases(scenario_dir)


def test_a_folder_without_cases_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="holds no eval cases"):
        load_cases(tmp_path)
    with pytest.raises(CaseError, match="no such file"):
        load_cases(tmp_path / "missing")
