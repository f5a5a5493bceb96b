"""In-process reviewer engine: one base model, many LoRA adapters per batch, schema-constrained JSON.

Public API: `Engine`, `GenerationRequest`, `GenerationResult` (engine.py) and `EngineBackend`
(backend.py). Everything else is the engine's inside. The names load on first use, so importing the
package (as the `calora` command line does for its sub-commands) does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Engine", "EngineError", "GenerationRequest", "GenerationResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from reviewers.engine import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'reviewers.engine' has no attribute {name!r}")
