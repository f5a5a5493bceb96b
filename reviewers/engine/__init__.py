"""In-process reviewer engine: one base model, many LoRA adapters per batch, schema-constrained JSON.

Public API: `Engine`, `GenerationRequest`, `GenerationResult` (engine.py) and `EngineBackend`
(backend.py). Everything else is the engine's inside.
"""

from reviewers.engine.engine import Engine, EngineError, GenerationRequest, GenerationResult

__all__ = ["Engine", "EngineError", "GenerationRequest", "GenerationResult"]
