"""Where LoRA lands in a model: default target modules per family, and which tower a module is in.

Multimodal Gemma checkpoints (Gemma 3, 3n, 4) hold a language model next to vision and audio towers
whose layers reuse names such as `q_proj`. A reviewer adapter must change only the language model,
so targets are resolved against the real module tree and any hit in another tower is refused unless
explicitly allowed. The same classification counts LoRA tensors in `calora adapters inspect`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Literal

# The engine's list of LoRA-targetable modules (attention and MLP projections; the same names in Llama,
# Mistral, Qwen2 and Gemma 1-4 text stacks): training targets no module the engine would refuse.
from reviewers.engine.lora import TARGET_MODULES

Tower = Literal["language_model", "vision", "audio", "other"]
TOWERS: tuple[Tower, ...] = ("language_model", "vision", "audio", "other")


_VISION = re.compile(r"(^|\.)(vision_tower|vision_model|visual|vision_encoder|embed_vision|image_encoder)(\.|$)")
_AUDIO = re.compile(r"(^|\.)(audio_tower|audio_model|audio_encoder|embed_audio)(\.|$)")
_LANGUAGE = re.compile(r"(^|\.)(language_model|text_model)(\.|$)|(^|\.)model\.layers\.\d+\.")


class TowerError(ValueError):
    """A LoRA target list that would put adapter weights outside the language model."""


def tower_of(module_name: str) -> Tower:
    """The tower of a dotted module (or tensor) name; a text-only decoder's layers count as language_model."""
    if _VISION.search(module_name):
        return "vision"
    if _AUDIO.search(module_name):
        return "audio"
    if _LANGUAGE.search(module_name):
        return "language_model"
    return "other"


def is_multimodal(module_names: Iterable[str]) -> bool:
    return any(tower_of(n) in ("vision", "audio") for n in module_names)


def default_targets(model_type: str, module_names: list[str]) -> list[str] | str:
    """Default for every family: each attention/MLP projection of the language model, and nothing else.

    For a multimodal checkpoint the list becomes a regex anchored under `language_model`, because
    PEFT matches plain names as suffixes anywhere (a vision tower's `q_proj` included).
    """
    if is_multimodal(module_names):
        return rf".*language_model\..*\.({'|'.join(TARGET_MODULES)})"
    return list(TARGET_MODULES)


def matches_target(module_name: str, targets: list[str] | str) -> bool:
    """PEFT's matching rule: a string is a full regex match; a list entry is the name or a dotted suffix."""
    if isinstance(targets, str):
        return re.fullmatch(targets, module_name) is not None
    return any(module_name == t or module_name.endswith("." + t) for t in targets)


def resolve_targets(
    linear_names: list[str], targets: list[str] | str, allow_non_language_towers: bool = False
) -> list[str]:
    """The linear modules `targets` reaches; raise `TowerError` if any is in a vision/audio tower, or is a
    language-model module the engine cannot serve (an adapter it would refuse)."""
    hit = [n for n in linear_names if matches_target(n, targets)]
    if not hit:
        raise TowerError(f"target_modules {targets!r} matches no linear layer of this model")
    unserved = sorted({n.rsplit(".", 1)[-1] for n in hit if tower_of(n) not in ("vision", "audio")}
                      - set(TARGET_MODULES))
    if unserved:
        raise TowerError(
            f"target_modules {targets!r} reaches {', '.join(unserved)}, which the engine cannot serve "
            f"(reviewers/engine/lora.py serves {', '.join(TARGET_MODULES)}); leave them out"
        )
    outside = [n for n in hit if tower_of(n) in ("vision", "audio")]
    if outside and not allow_non_language_towers:
        by = Counter(tower_of(n) for n in outside)
        raise TowerError(
            f"target_modules {targets!r} reaches {len(outside)} modules outside the language model "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(by.items()))}; first: {outside[0]}); "
            "restrict it with a regex under 'language_model' or pass --allow-non-language-towers"
        )
    return hit


def count_by_tower(tensor_names: Iterable[str]) -> dict[Tower, int]:
    counts: Counter[Tower] = Counter(tower_of(n) for n in tensor_names)
    return {t: counts.get(t, 0) for t in TOWERS}
