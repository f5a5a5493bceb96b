"""`calora loop`: the coding loop from the command line (the thin shell around `loop.runner`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr

from reviewers.settings import CaloraSettings

if TYPE_CHECKING:
    from loop.rounds import LoopSummary

EXIT_APPROVED, EXIT_NOT_APPROVED, EXIT_ERROR = 0, 1, 3


class LoopEnvironment(CaloraSettings):
    """The author model's endpoint and the store, from `CALORA_*` (the command's flags win).

    - `author_url` (CALORA_AUTHOR_URL): an OpenAI-compatible base URL, e.g. http://gpu-box:8000/v1.
    - `author_model` (CALORA_AUTHOR_MODEL): the model name that endpoint serves.
    - `author_api_key` (CALORA_AUTHOR_API_KEY): sent as a bearer token; never logged or recorded.
    - `database_url` (CALORA_DATABASE_URL): the App's store, where rounds are recorded.
    """

    author_url: str | None = None
    author_model: str | None = None
    author_api_key: SecretStr | None = Field(default=None)
    author_timeout_s: float = Field(default=300.0, gt=0)
    database_url: str | None = None


def register(subparsers: argparse._SubParsersAction) -> None:
    loop = subparsers.add_parser(
        "loop", help="an author model writes a patch; reviewers and analyzers judge it, round after round",
        description=(
            "Ask an author model (any OpenAI-compatible endpoint) for a patch, apply it in a scratch git "
            "worktree, run your tests (only with --test-cmd), review it with the specialist reviewers and the "
            "analyzers, and send the author the revision plan; stop when the review approves and the tests "
            "pass, when the rounds run out or when a round changes nothing. Your working tree is never "
            "touched unless --apply. Exit code: 0 approved, 1 not approved, 3 error."
        ),
    )
    loop.add_argument("--task", required=True, help="what the author should change")
    loop.add_argument("--repo", type=Path, default=Path("."), help="the git repository (default: .)")
    loop.add_argument("--author-url", help="OpenAI-compatible base URL of the author (CALORA_AUTHOR_URL)")
    loop.add_argument("--author-model", help="the author's model name (CALORA_AUTHOR_MODEL)")
    loop.add_argument("--author-timeout", type=float, help="seconds to wait for an answer (default 300)")
    loop.add_argument("--author-max-tokens", type=int, default=2048, help="answer length cap (default 2048)")
    loop.add_argument("--max-rounds", type=int, default=3, help="rounds at most (default 3, at most 10)")
    loop.add_argument("--test-cmd", help="your test command, run in the scratch worktree (never run without it)")
    loop.add_argument("--test-timeout", type=float, default=300.0, help="seconds the tests may take (default 300)")
    loop.add_argument("--max-patch-bytes", type=int, default=100_000, help="largest patch accepted (default 100000)")
    loop.add_argument("--context-chars", type=int, default=40_000,
                      help="repository text shown to the author (default 40000 characters)")
    loop.add_argument("--apply", action="store_true",
                      help="when approved, apply the final patch to your working tree (only if it is clean)")
    loop.add_argument("--format", choices=["markdown", "json"], default="markdown")
    loop.add_argument("--reviewers", nargs="+", metavar="NAME", help="only these reviewers")
    loop.add_argument("--backend", choices=["transformers", "engine", "openai", "none"],
                      help="the reviewers' backend, as for calora review; none: the analyzers alone")
    loop.add_argument("--base-model", help="the reviewers' base model, as for calora review")
    loop.add_argument("--adapters", type=Path, help="folder of per-reviewer adapters (default: ./adapters)")
    loop.add_argument("--max-new-tokens", type=int, help="reviewer answer length cap per slice")
    loop.add_argument("--database-url", help="where rounds are recorded (default: CALORA_DATABASE_URL or "
                      "./calora.sqlite, the App's store)")
    loop.add_argument("--no-record", action="store_true", help="do not record the rounds")
    loop.set_defaults(handler=run_loop_command)


def run_loop_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from loop.author import OpenAIAuthor
    from loop.records import LoopRecorder
    from loop.runner import LoopSettings, run_loop
    from loop.worktree import LoopSetupError
    from reviewers.commands import ReviewInputError, _split_names
    from reviewers.safe_text import redact

    def progress(message: str) -> None:
        print(f"calora: {message}", file=sys.stderr, flush=True)

    env = LoopEnvironment()
    url = args.author_url or env.author_url
    model = args.author_model or env.author_model
    if not url or not model:
        progress("the author is not set: give --author-url and --author-model (or CALORA_AUTHOR_URL and "
                 "CALORA_AUTHOR_MODEL), e.g. --author-url http://gpu-box:8000/v1 --author-model my-model")
        return EXIT_ERROR
    try:
        settings = LoopSettings(
            task=args.task, repo=args.repo, max_rounds=args.max_rounds, test_cmd=args.test_cmd or None,
            test_timeout_s=args.test_timeout, max_patch_bytes=args.max_patch_bytes,
            context_chars=args.context_chars, reviewers=_split_names(args.reviewers), apply=args.apply,
        )
    except (ValidationError, ReviewInputError) as exc:
        progress(f"invalid arguments: {exc}")
        return EXIT_ERROR
    key = env.author_api_key
    author = OpenAIAuthor(url, model, api_key=key.get_secret_value() if key else None,
                          timeout_s=args.author_timeout or env.author_timeout_s,
                          max_tokens=args.author_max_tokens)
    recorder = None
    if not args.no_record:
        from app.settings import default_database_url

        database_url = args.database_url or env.database_url or default_database_url()
        recorder = LoopRecorder.from_url(database_url)
    from reviewers.commands import _make_backend  # the same settings and flags as `calora review`

    backend = None if args.backend == "none" else _make_backend(args, progress)
    try:
        summary = run_loop(settings, author, backend, recorder, progress)
    except LoopSetupError as exc:
        progress(str(exc))
        return EXIT_ERROR
    finally:
        author.close()
        if recorder:
            recorder.close()
    text = summary.model_dump_json(indent=2) if args.format == "json" else render_summary(summary)
    print(redact(text), flush=True)
    ok = summary.approved and (not args.apply or summary.applied_to_working_tree)
    return EXIT_APPROVED if ok else EXIT_NOT_APPROVED


def render_summary(summary: LoopSummary) -> str:
    """The loop's summary for a terminal: one line a round, then where the result is."""
    from reviewers.safe_text import safe_text

    head = "approved" if summary.approved else f"not approved ({summary.stop_reason})"
    lines = [f"## calora loop: {head} after {len(summary.rounds)} round(s)", ""]
    for r in summary.rounds:
        lines.append(f"{r.number}. [{r.status}] {safe_text(r.message, one_line=True)}")
        for d in r.disputes:
            on = f" (on {safe_text(d.finding, one_line=True)})" if d.finding else ""
            lines.append(f"   - author rejected {safe_text(d.rejection.target, one_line=True)}{on}: "
                         f"{safe_text(d.rejection.reason, one_line=True)}")
    lines.append("")
    if summary.committed:
        lines.append(f"Branch `{summary.branch}` (worktree {summary.worktree}) holds the final patch as one commit.")
    else:
        lines.append(f"No patch applied; the scratch worktree is {summary.worktree} (branch `{summary.branch}`).")
    lines.append(f"Remove it with: git worktree remove {summary.worktree} && git branch -D {summary.branch}")
    if summary.apply_message:
        lines.append(summary.apply_message)
    if summary.loop_id is not None:
        lines.append(f"Recorded as loop {summary.loop_id}: /console/loops/{summary.loop_id}")
    if summary.final_patch and summary.approved:
        lines += ["", "```diff", summary.final_patch.rstrip("\n"), "```"]
    return "\n".join(lines)
