"""The app's settings, read from the environment (prefix `CALORA_`) by pydantic-settings.

Every name below is read as `CALORA_<NAME>` (case-insensitive), e.g. `CALORA_WEBHOOK_SECRET`.
A `.env` file in the working directory is read too; the environment wins over it. That rule is
`reviewers.settings.CaloraSettings`, shared by every settings class, and the nested reviewer-backend
settings are read from the same sources as these (so `CALORA_BACKEND` in `.env` reaches the worker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator

from reviewers.backends.factory import BackendSettings
from reviewers.settings import CaloraSettings, source_options

DEFAULT_DATABASE_FILE = "calora.sqlite"
WRITE_ACCESS_ASSOCIATIONS: frozenset[str] = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})



def default_database_url() -> str:
    """A SQLite file named `calora.sqlite` in the working directory, as an absolute URL.

    The working directory is where `calora serve` / `calora worker` start (the systemd unit and the
    compose file set it), so the server and a separate worker started side by side share one queue.
    """
    return f"sqlite:///{(Path.cwd() / DEFAULT_DATABASE_FILE).resolve()}"


class Settings(CaloraSettings):
    """Runtime settings of the GitHub App (`calora serve`, `calora worker`).

    GitHub App
      - `app_id` (CALORA_APP_ID): the App's numeric id.
      - `private_key_path` (CALORA_PRIVATE_KEY_PATH): PEM file of the App's private key.
      - `webhook_secret` (CALORA_WEBHOOK_SECRET): the secret GitHub signs deliveries with
        (required by `calora serve`).
      - `github_api_url` (CALORA_GITHUB_API_URL): REST API root; GitHub Enterprise and the tests' fake
        server set it.
      - `bot_login` (CALORA_BOT_LOGIN): the App's bot user, e.g. `calora[bot]`; its own comments never
        trigger a review (comments from any sender of type Bot are ignored too).

    Receiver
      - `allowed_associations` (CALORA_ALLOWED_ASSOCIATIONS, JSON list): comment authors whose `/review`
        is obeyed; default OWNER, MEMBER, COLLABORATOR (people with write access).
      - `max_body_bytes` (CALORA_MAX_BODY_BYTES): larger deliveries get 413; default 25 MB, GitHub's cap.
      - `queue_drafts` (CALORA_QUEUE_DRAFTS): true (default) queues pull_request events of draft pull
        requests and the review job decides from the repo's `.calora.yml` (`drafts:`), read from the base
        branch; false skips drafts at the receiver for every repository.

    Queue and worker
      - `database_url` (CALORA_DATABASE_URL): SQLAlchemy URL; default a SQLite file `calora.sqlite` in
        the working directory. `postgresql+psycopg://user:pass@host/db` shares the queue between several
        workers on several machines.
      - `max_attempts` (CALORA_MAX_ATTEMPTS): runs of one job before its check run is concluded as failed.
      - `lease_seconds` (CALORA_LEASE_SECONDS): a claimed job's lease; a live worker renews it every third
        of it, a dead worker's job is claimed again once it has expired.
      - `retry_base_seconds` / `retry_max_seconds`: exponential back-off between attempts.
      - `job_timeout_seconds` (CALORA_JOB_TIMEOUT_SECONDS): a run that takes longer fails this attempt.
      - `worker_concurrency` (CALORA_WORKER_CONCURRENCY): jobs one worker process runs at once.
      - `poll_seconds` (CALORA_POLL_SECONDS): idle worker's wait between looks at the queue.
      - `job_runner` (CALORA_JOB_RUNNER, `module:function`): an operations/test hook that replaces the
        review with `async def function(spec: ReviewJobSpec)`; `job_failure_hook` (`module:function`,
        `async def function(spec, reason)`) goes with it. Unset (the default) runs
        `app.review_job.run_review` / `conclude_failure`.

    Repository context
      - `context_max_requests` (CALORA_CONTEXT_MAX_REQUESTS): GitHub contents requests one review may spend
        reading repository files for its reviewers' context (`app/context_source.py`); default 20. Past
        it, reads go without and the review's notes say so; 0 gives the reviewers no context.

    Reviewer backend
      - `reviewer`: the same `reviewers.backends.factory.BackendSettings` that `calora review` uses, read
        from the same variables: CALORA_BACKEND (engine, the default | transformers | openai),
        CALORA_BASE_MODEL, CALORA_ADAPTERS_DIR, CALORA_OPENAI_BASE_URL, CALORA_OPENAI_API_KEY, ...

    Secrets are `SecretStr`: printing or logging the settings shows `**********`.
    """

    app_id: int | None = None
    private_key_path: Path | None = None
    webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    bot_login: str | None = None

    allowed_associations: frozenset[str] = WRITE_ACCESS_ASSOCIATIONS
    max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    queue_drafts: bool = True

    database_url: str = Field(default_factory=default_database_url)
    max_attempts: int = Field(default=3, ge=1)
    lease_seconds: float = Field(default=120.0, gt=0)
    retry_base_seconds: float = Field(default=10.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)
    job_timeout_seconds: float = Field(default=900.0, gt=0)
    worker_concurrency: int = Field(default=1, ge=1)
    poll_seconds: float = Field(default=1.0, gt=0)
    job_runner: str | None = None
    job_failure_hook: str | None = None

    context_max_requests: int = Field(default=20, ge=0)

    reviewer: BackendSettings = Field(default_factory=BackendSettings)

    def __init__(self, **values: Any) -> None:
        # The reviewer settings come from the same sources as these: `Settings(_env_file=...)` included.
        if "reviewer" not in values:
            values["reviewer"] = BackendSettings(**source_options(values))
        super().__init__(**values)

    @field_validator("allowed_associations", mode="after")
    @classmethod
    def _upper_associations(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(item.strip().upper() for item in value if item.strip())

    @field_validator("webhook_secret", mode="after")
    @classmethod
    def _non_empty_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("CALORA_WEBHOOK_SECRET is empty; set it to the App's webhook secret")
        return value

    def webhook_secret_bytes(self) -> bytes:
        """The secret as bytes for HMAC; the receiver refuses to start without one."""
        if self.webhook_secret is None:
            raise MissingSettingError("CALORA_WEBHOOK_SECRET is not set; the receiver cannot verify deliveries")
        return self.webhook_secret.get_secret_value().encode()


    def app_credentials(self) -> tuple[int, str]:
        """The App's id and private key (PEM text), or a MissingSettingError saying what to set.

        Cheap, so `calora serve` checks it before it listens: a wrong setting stops the command at once
        instead of surfacing only when the worker, after loading the model, first needs GitHub.
        """
        if self.app_id is None:
            raise MissingSettingError("CALORA_APP_ID is not set; the worker cannot authenticate as the GitHub App")
        if self.private_key_path is None:
            raise MissingSettingError("CALORA_PRIVATE_KEY_PATH is not set; point it at the App's private key (.pem)")
        try:
            private_key = self.private_key_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MissingSettingError(
                f"cannot read the App's private key at {self.private_key_path}: {exc.strerror}"
            ) from None
        if "PRIVATE KEY" not in private_key:
            raise MissingSettingError(f"{self.private_key_path} does not look like a PEM private key")
        return self.app_id, private_key


class MissingSettingError(RuntimeError):
    """A setting this command needs is not set."""
