"""`calora data evidence`: the analyzers' real output lands in an example's check_output, still a valid example."""

from __future__ import annotations

import shutil

import yaml

from app.cli import main
from tests.conftest import REPO_ROOT
from training.examples import CuratedExample

EXAMPLE = REPO_ROOT / "datasets" / "python" / "python-001-order-search-sql-injection.yaml"


def test_evidence_is_written_into_the_example_and_it_still_validates(tmp_path, capsys) -> None:
    target = tmp_path / "python" / EXAMPLE.name
    target.parent.mkdir()
    shutil.copyfile(EXAMPLE, target)
    assert main(["data", "evidence", str(target)]) == 0
    data = yaml.safe_load(target.read_text())
    assert "ruff S608" in data["check_output"] and "evidence" in data["tags"]
    example = CuratedExample.model_validate(data)
    assert example.request().check_output == data["check_output"]
    assert yaml.safe_load(EXAMPLE.read_text())["expected"] == data["expected"]
    before = target.read_text()
    assert main(["data", "evidence", str(target)]) == 0  # already has evidence: left alone
    assert target.read_text() == before
    assert "1 already had check_output" in capsys.readouterr().out
