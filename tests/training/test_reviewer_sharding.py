"""`calora train --all` under several processes shards the reviewers: each process trains whole reviewers
alone, so every reviewer gets its adapter exactly once and that adapter is the one-process adapter."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.conftest import short_chat
from training.config import add_arguments
from training.train import assign_reviewers, configs_from_args, run_summary, train_all

REPO = Path(__file__).resolve().parents[2]
REVIEWERS = {"python": 24, "sql": 12, "docker": 8}  # examples each: unequal costs to balance


def test_reviewers_are_balanced_by_cost_and_each_assigned_once() -> None:
    costs = {"python": 900, "typescript": 700, "react": 500, "sql": 400, "vue": 300, "docker": 200,
             "testing": 100, "terraform": 100}
    shards = assign_reviewers(costs, 2)
    assert sorted(r for shard in shards for r in shard) == sorted(costs)
    loads = [sum(costs[r] for r in shard) for shard in shards]
    assert loads == [1600, 1600]
    assert shards == assign_reviewers(dict(reversed(list(costs.items()))), 2), "the plan ignores input order"
    assert assign_reviewers(costs, 1) == [sorted(costs, key=lambda r: (-costs[r], r))]
    assert [len(s) for s in assign_reviewers({"a": 1, "b": 1}, 3)] == [1, 1, 0]


def test_summary_totals_tokens_of_every_process_and_keeps_each_share() -> None:
    shares = [{"process": 0, "tokens": 300, "wall_s": 2.0, "reviewers": [{"reviewer": "sql"}]},
              {"process": 1, "tokens": 500, "wall_s": 3.0, "reviewers": [{"reviewer": "python"}]}]
    summary = run_summary(shares, 4.0)
    assert summary["total"] == {"wall_s": 4.0, "tokens": 800, "tokens_per_s": 200.0, "reviewers": ["python", "sql"]}
    assert summary["per_process"] == shares and summary["processes"] == 2


@pytest.fixture(scope="module")
def multi_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multi-data")
    for reviewer, count in REVIEWERS.items():
        (root / reviewer).mkdir()
        rows = [json.dumps({**short_chat(i), "id": f"{reviewer}/ex{i:03d}"}) for i in range(count)]
        (root / reviewer / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def config_file(folder: Path, base: Path, data: Path, runs: Path) -> Path:
    config = {"reviewer": "python", "data_dir": str(data), "run_dir": str(runs), "base_model": str(base),
              "epochs": 1, "max_steps": 3, "tokens_per_batch": 200, "checkpoint_every": 2, "lora_r": 4,
              "lora_alpha": 8, "lora_dropout": 0.1, "learning_rate": 5e-3, "warmup_steps": 1, "device": "cpu",
              "seed": 3}
    path = folder / "cfg.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path, multi_data: Path) -> Path:
    folder = tmp_path_factory.mktemp("one-process")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--all", "--config", str(config_file(folder, tiny_base, multi_data, folder / "runs"))])
    train_all(configs_from_args(args))
    return folder / "runs"


def adapter_tensors(adapter_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(adapter_dir / "adapter_model.safetensors")


def test_one_process_all_writes_a_summary_with_every_reviewer(one_process: Path) -> None:
    summary = json.loads((one_process / "summary.json").read_text())
    assert summary["processes"] == 1 and summary["total"]["reviewers"] == sorted(REVIEWERS)
    [share] = summary["per_process"]
    assert share["device"] == "cpu" and [r["steps"] for r in share["reviewers"]] == [3, 3, 3]
    assert summary["total"]["tokens"] == share["tokens"] == sum(r["tokens"] for r in share["reviewers"]) > 0
    assert summary["total"]["tokens_per_s"] > 0
    for reviewer in REVIEWERS:
        assert (one_process / reviewer / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_two_gloo_processes_shard_reviewers_and_match_the_one_process_adapters(
    one_process: Path, tiny_base: Path, multi_data: Path, tmp_path: Path
) -> None:
    import torch

    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training.train",
         "--all", "--config", str(config_file(tmp_path, tiny_base, multi_data, runs))],
        check=False, cwd=REPO, env=env, capture_output=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads((runs / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["plan"] == "reviewers sharded over processes"
    trained = [[r["reviewer"] for r in share["reviewers"]] for share in summary["per_process"]]
    assert trained == [["python"], ["docker", "sql"]]  # 24 examples against 12 + 8 (each in name order)
    assert summary["total"]["tokens"] == sum(share["tokens"] for share in summary["per_process"])
    for reviewer in REVIEWERS:
        resolved = json.loads((runs / reviewer / "config.json").read_text())["resolved"]
        assert resolved["world_size"] == 1, "a sharded reviewer is trained by one process alone"
        sharded, single = adapter_tensors(runs / reviewer / "adapter"), adapter_tensors(one_process / reviewer / "adapter")
        assert sharded.keys() == single.keys()
        assert all(torch.equal(sharded[k], single[k]) for k in single), f"{reviewer}: adapters differ"
        assert [json.loads(x)["loss"] for x in (runs / reviewer / "metrics.jsonl").read_text().splitlines()] == [
            json.loads(x)["loss"] for x in (one_process / reviewer / "metrics.jsonl").read_text().splitlines()]
