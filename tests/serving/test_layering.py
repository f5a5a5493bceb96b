"""The review core imports no backend, and the reviewer server no concrete backend: both get theirs
injected (the pipeline from its caller, the server from `calora reviewers serve`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

BACKENDS = ("reviewers.backends.cloud", "reviewers.backends.factory", "reviewers.backends.openai_backend",
            "reviewers.backends.transformers_backend", "reviewers.engine.backend")


def modules_after_import(module: str) -> set[str]:
    """The calora modules a fresh interpreter has loaded after `import module`."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return {name for name in json.loads(out.stdout) if name.startswith("reviewers")}


# The review core: diff → routes → slices → evidence → prompt → contract → anchoring → synthesis.
REVIEW_CORE = ("reviewers.pipeline", "reviewers.synthesis", "reviewers.slicing", "reviewers.routing",
               "reviewers.unified_diff", "reviewers.anchoring", "reviewers.contract", "reviewers.prompt",
               "reviewers.safe_text", "reviewers.checks")


@pytest.mark.parametrize("module", [*REVIEW_CORE, "reviewers.serving.app"])
def test_no_concrete_backend_is_imported(module: str) -> None:
    loaded = modules_after_import(module)
    assert not loaded & set(BACKENDS), sorted(loaded & set(BACKENDS))


@pytest.mark.parametrize("module", REVIEW_CORE)
def test_the_review_core_does_not_load_the_engine_or_the_server(module: str) -> None:
    loaded = modules_after_import(module)
    assert not {m for m in loaded if m.startswith(("reviewers.engine", "reviewers.serving"))}
