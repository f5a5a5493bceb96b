"""`calora review`, `calora contract schema` and `calora models fetch`."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

from reviewers.contract import Verdict

log = logging.getLogger(__name__)

EXIT_CODES = {Verdict.approve: 0, Verdict.revise: 1, Verdict.block: 2}
EXIT_ERROR = 3


class ReviewInputError(RuntimeError):
    """The diff to review could not be read."""


def register(subparsers: argparse._SubParsersAction) -> None:
    review = subparsers.add_parser(
        "review", help="review a local diff", description=(
            "Review a diff with the specialist reviewers. Exit code: 0 approve, 1 revise, 2 block, 3 error."
        ),
    )
    source = review.add_mutually_exclusive_group(required=True)
    source.add_argument("--diff", metavar="FILE", help="a unified diff file, or - for stdin")
    source.add_argument("--git", metavar="RANGE", help="a git range (e.g. main..HEAD, or HEAD~1) in the current repo")
    review.add_argument("--reviewers", nargs="+", metavar="NAME",
                        help="only these reviewers (space or comma separated)")
    review.add_argument("--task", default="", help="the intent of the change (PR title/body)")
    review.add_argument("--base-model", help="a .gguf file, a model folder or a hub id (default: SmolLM2-135M)")
    review.add_argument("--adapters", type=Path, help="folder of per-reviewer adapters (default: ./adapters)")
    review.add_argument("--backend", choices=["transformers", "engine", "openai"], help="default: transformers")
    review.add_argument("--format", choices=["markdown", "json"], default="markdown")
    review.add_argument("--dry-run", action="store_true", help="route and slice only; print the plan, no model")
    review.add_argument("--budget", type=int, default=3000, help="diff tokens per slice (default 3000)")
    review.add_argument("--max-new-tokens", type=int, help="answer length cap per slice")
    review.set_defaults(handler=run_review_command)

    contract = subparsers.add_parser("contract", help="the reviewer contract")
    contract_sub = contract.add_subparsers(dest="contract_command", metavar="COMMAND", required=True)
    schema = contract_sub.add_parser("schema", help="print the JSON schemas of the reviewer contract")
    schema.add_argument("--only", choices=["ReviewerOutput", "ReviewRequest"], help="print one schema")
    schema.set_defaults(handler=run_schema_command)

    models = subparsers.add_parser("models", help="base models")
    models_sub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    fetch = models_sub.add_parser("fetch", help="download the default base model (SmolLM2-135M-Instruct GGUF)")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")
    fetch.set_defaults(handler=run_fetch_command)


def run_schema_command(args: argparse.Namespace) -> int:
    from reviewers.contract import contract_schemas

    schemas = contract_schemas()
    print(json.dumps(schemas[args.only] if args.only else schemas, indent=2))
    return 0


def run_fetch_command(args: argparse.Namespace) -> int:
    from reviewers.models import ModelFetchError, fetch_default_model

    try:
        path = fetch_default_model(force=args.force)
    except ModelFetchError as exc:
        print(f"calora: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(path)
    return 0


def read_diff(args: argparse.Namespace) -> tuple[bytes, dict[str, str]]:
    """The diff bytes and, for --git, the full new-side contents of the changed files (for the checks)."""
    if args.diff:
        if args.diff == "-":
            return sys.stdin.buffer.read(), {}
        path = Path(args.diff)
        if not path.is_file():
            raise ReviewInputError(f"diff file {path} does not exist")
        return path.read_bytes(), {}
    return read_git_range(args.git)


def _git(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *argv], check=False, capture_output=True)


def read_git_range(rev_range: str) -> tuple[bytes, dict[str, str]]:
    """`git diff RANGE` plus the changed files at the range's right side (the working tree for one rev)."""
    diff = _git("diff", "--no-color", "--no-ext-diff", rev_range)
    if diff.returncode != 0:
        raise ReviewInputError(f"git diff {rev_range} failed: {diff.stderr.decode(errors='replace').strip()}")
    names = _git("diff", "--name-only", "--diff-filter=d", rev_range)
    right = rev_range.split("..", 1)[1].lstrip(".") if ".." in rev_range else None
    contents: dict[str, str] = {}
    for name in names.stdout.decode(errors="replace").splitlines():
        if right:
            shown = _git("show", f"{right}:{name}")
            data = shown.stdout if shown.returncode == 0 else None
        else:
            file = Path(name)
            data = file.read_bytes() if file.is_file() else None
        if data is not None and b"\0" not in data[:8192]:
            contents[name] = data.decode("utf-8", errors="replace")
    return diff.stdout, contents


def _split_names(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    from reviewers.routing import REVIEWER_NAMES

    names = tuple(n for v in values for n in v.replace(",", " ").split())
    unknown = [n for n in names if n not in REVIEWER_NAMES]
    if unknown:
        raise ReviewInputError(f"unknown reviewer(s) {', '.join(unknown)}; known: {', '.join(REVIEWER_NAMES)}")
    return names


def run_review_command(args: argparse.Namespace) -> int:
    from reviewers.pipeline import run_pipeline
    from reviewers.slicing import DiffParseError, SliceLimits, render_plan
    from reviewers.synthesis import render_json, render_markdown

    def progress(message: str) -> None:
        print(f"calora: {message}", file=sys.stderr, flush=True)

    try:
        reviewers = _split_names(args.reviewers)
        diff, contents = read_diff(args)
        limits = SliceLimits(budget_tokens=args.budget)
        backend = None if args.dry_run else _make_backend(args, progress)
        run = run_pipeline(
            diff, backend, task=args.task, reviewers=reviewers, limits=limits, file_contents=contents,
            count_tokens=backend.count_tokens if backend is not None else None, progress=progress,
        )
    except (ReviewInputError, DiffParseError) as exc:
        print(f"calora: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # model load failures and the like: say what, exit 3 for CI gates
        from reviewers.models import ModelFetchError

        if isinstance(exc, ModelFetchError):
            print(f"calora: {exc}", file=sys.stderr)
            return EXIT_ERROR
        raise

    if args.dry_run:
        plan = render_plan(run.plan)
        if args.format == "json":
            print(json.dumps(plan, indent=2))
        else:
            print(_plan_markdown(plan))
        return 0
    result = run.result
    print(render_json(result) if args.format == "json" else render_markdown(result))
    progress(f"done in {run.seconds:.1f} s: {result.decision}")
    if result.decision == "incomplete":
        progress("the review is incomplete (a reviewer failed and nothing else blocks); exit code 3")
        return EXIT_ERROR
    return EXIT_CODES[result.verdict]


def _make_backend(args: argparse.Namespace, progress) -> object:
    from reviewers.backends.factory import BackendSettings, make_backend

    overrides = {}
    if args.base_model:
        overrides["base_model"] = args.base_model
    if args.adapters:
        overrides["adapters_dir"] = args.adapters
    if args.backend:
        overrides["backend"] = args.backend
    if args.max_new_tokens:
        overrides["max_new_tokens"] = args.max_new_tokens
    settings = BackendSettings(**overrides)
    progress(f"loading the {settings.backend} backend (model: {settings.base_model or 'default SmolLM2-135M'})")
    return make_backend(settings)


def _plan_markdown(plan: dict) -> str:
    lines = ["| reviewer | slice | files | tokens |", "|---|---|---|---|"]
    for s in plan["slices"]:
        files = ", ".join(
            f"{f['path']} ({', '.join(f'{a}-{b}' for a, b in f['lines'])})" for f in s["files"]
        )
        flags = (" (split hunk)" if s.get("split_hunk") else "") + (" (over budget)" if s.get("over_budget") else "")
        lines.append(f"| {s['reviewer']} | {s['index']} | {files} | {s['tokens']}{flags} |")
    if plan["not_reviewed"]:
        lines += ["", "Not reviewed:"]
        lines += [f"- {n['path']}: {n['reason']}" + (f" ({n['reviewer']})" if n.get("reviewer") else "")
                  for n in plan["not_reviewed"]]
    return "\n".join(lines)
