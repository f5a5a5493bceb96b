"""The `calora` command line. Each package contributes its own sub-commands through `register`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Modules that define `register(subparsers)`; heavy imports stay inside their handlers.
COMMAND_MODULES: tuple[str, ...] = (
    "reviewers.commands",
    "reviewers.checks.commands",
    "reviewers.engine.commands",
    "app.commands",
    "training.commands",
    "eval.commands",
    "loop.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calora", description="Code Assistant LoRA: pull-request review with specialist LoRA reviewers."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that package has no commands yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 3
    from reviewers.adapter_manifest import AdapterBaseMismatchError
    from reviewers.models import ModelFetchError

    try:
        return int(handler(args) or 0)
    except (ModelFetchError, AdapterBaseMismatchError) as exc:
        # any command: a base model not fetched, or an adapter of another base; the message says the fix
        print(f"calora: {exc}", file=sys.stderr)
        return 3
    except BrokenPipeError:
        # The reader of our output went away (`calora … | head`): no traceback. Commands that have an
        # exit code to keep (`calora review`'s verdict) catch it where they print (reviewers.commands.emit).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


if __name__ == "__main__":
    sys.exit(main())
