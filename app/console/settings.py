"""The console's settings, read from the environment like the app's (prefix `CALORA_`, `.env` too).

- `console_token` (CALORA_CONSOLE_TOKEN): the token a maintainer gives as `Authorization: Bearer ...` or
  in the login form. Unset: the console answers loopback clients only (403 for anyone else, and for any
  request that came through a proxy, since a proxy on the same host makes every client look local).
- `console_runs_dir` (CALORA_CONSOLE_RUNS_DIR): where training run folders live (default `runs`); every
  folder below it (three levels deep at most) with a `config.json` and a `metrics.jsonl` is a run.
- `eval_history` (CALORA_EVAL_HISTORY): eval's score history SQLite (default `eval/history.sqlite`).
- `console_gates` (CALORA_CONSOLE_GATES): the gates YAML to colour metrics by (default: eval's own
  `eval/gates.yml`, the file `calora promote` uses).
- `console_poll_seconds` (CALORA_CONSOLE_POLL_SECONDS): how often pages with running reviews refresh.
- `patch_author_model` / `patch_author_base_url` (CALORA_PATCH_AUTHOR_MODEL, CALORA_PATCH_AUTHOR_BASE_URL):
  the model that writes patches from the reviews (the coding agent's), shown on the role map only; the
  app itself never calls it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from eval.history import HistorySettings


class ConsoleSettings(HistorySettings):
    """What the console reads besides the app's own settings (by the same rule: `CaloraSettings`);
    `eval_history` is eval's own setting (`eval.history.HistorySettings`)."""

    console_token: SecretStr | None = None
    console_runs_dir: Path = Path("runs")
    console_gates: Path | None = None
    console_poll_seconds: float = Field(default=3.0, gt=0.2, le=300)
    patch_author_model: str | None = None
    patch_author_base_url: str | None = None

    @field_validator("console_token", mode="after")
    @classmethod
    def _empty_means_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value
