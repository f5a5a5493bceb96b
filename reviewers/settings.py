"""The one rule by which every settings class of calora reads its values.

`CALORA_<NAME>` from the environment, else from `.env` in the working directory (the environment wins),
names case-insensitive; names a class does not know are ignored, because all classes share the one
`CALORA_` namespace. The backend's settings (reviewers/backends/factory.py), the App's (app/settings.py)
and the console's (app/console/settings.py) all inherit `CaloraSettings`, so a variable in `.env` means
the same to `calora review`, `calora serve`, `calora worker` and the console.
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CALORA_"
ENV_FILE = ".env"

# The keyword arguments of a BaseSettings constructor that choose where values come from (not values).
SOURCE_OPTIONS = frozenset({
    "_case_sensitive", "_env_prefix", "_env_file", "_env_file_encoding", "_env_ignore_empty",
    "_env_nested_delimiter", "_env_parse_none_str", "_env_parse_enums", "_secrets_dir",
})


class CaloraSettings(BaseSettings):
    """Base of every settings class: the environment, then `.env`, under the `CALORA_` prefix."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore")


def source_options(values: dict[str, Any]) -> dict[str, Any]:
    """The source options among a settings constructor's arguments, to build a nested settings object
    from the same sources as its parent (e.g. `Settings(_env_file=...)` and its `reviewer`)."""
    return {key: value for key, value in values.items() if key in SOURCE_OPTIONS}
