"""Reviewer backends: something that turns `ReviewRequest`s into `ReviewerOutput`s or errors."""

from typing import Literal, get_args

BackendName = Literal["engine", "transformers", "openai"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)
DEFAULT_BACKEND: BackendName = "engine"  # the faster CPU path; why: reviewers/backends/factory.py
