"""`calora adapters inspect DIR`: what a PEFT adapter folder holds, counted by tower.

For a multimodal Gemma base the question that matters is whether any LoRA tensor sits in a vision or
audio tower (it must not: reviewers read code). Reads only the adapter files; no base model needed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from training.towers import TOWERS, count_by_tower, tower_of


class AdapterInspectionError(ValueError):
    """The folder is not a PEFT adapter."""


class AdapterInspection(BaseModel):
    """Counts for one adapter folder."""

    path: str
    base_model: str | None
    peft_type: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str] | str | None
    tensors: int
    parameters: int
    lora_tensors_by_tower: dict[str, int]
    modules_by_tower: dict[str, int]
    dtypes: dict[str, int]


def inspect_adapter(folder: Path) -> AdapterInspection:
    from safetensors import safe_open

    config_path = folder / "adapter_config.json"
    weights_path = folder / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise AdapterInspectionError(
            f"{folder}: expected adapter_config.json and adapter_model.safetensors (a PEFT adapter folder)"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    names: list[str] = []
    parameters = 0
    dtypes: Counter[str] = Counter()
    with safe_open(str(weights_path), framework="pt") as fh:
        for name in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
            sl = fh.get_slice(name)
            shape = sl.get_shape()
            count = 1
            for dim in shape:
                count *= dim
            parameters += count
            dtypes[sl.get_dtype()] += 1
            names.append(name)
    lora = [n for n in names if ".lora_" in n]
    modules = {n.split(".lora_")[0] for n in lora}
    module_counts: Counter[str] = Counter(tower_of(m) for m in modules)
    return AdapterInspection(
        path=str(folder), base_model=config.get("base_model_name_or_path"), peft_type=config.get("peft_type"),
        r=config.get("r"), lora_alpha=config.get("lora_alpha"), target_modules=config.get("target_modules"),
        tensors=len(names), parameters=parameters, lora_tensors_by_tower=dict(count_by_tower(lora)),
        modules_by_tower={t: module_counts.get(t, 0) for t in TOWERS}, dtypes=dict(dtypes),
    )


def format_inspection(report: AdapterInspection) -> str:
    lines = [
        f"adapter      {report.path}",
        f"base model   {report.base_model}",
        f"type         {report.peft_type} r={report.r} alpha={report.lora_alpha}",
        f"targets      {report.target_modules}",
        f"tensors      {report.tensors} ({report.parameters:,} parameters; {report.dtypes})",
        "LoRA tensors by tower:",
    ]
    for tower in TOWERS:
        lines.append(f"  {tower:<15}{report.lora_tensors_by_tower[tower]:>6} tensors "
                     f"{report.modules_by_tower[tower]:>5} modules")
    return "\n".join(lines)
