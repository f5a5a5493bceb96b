"""`calora data build|augment`, `calora scan`, `calora train`, `calora adapters inspect`.

Heavy imports (torch, transformers) stay inside the handlers so `calora --help` stays fast. Also
runnable without the rest of the app: `python -m training.commands data build ...`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from training.augment import DEFAULT_FILL_TO
from training.dataset_build import DEFAULT_EVAL_FRACTION

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="curated examples: build train/eval JSONL, augment")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    build = data_sub.add_parser("build", help="validate examples and write per-reviewer train/eval JSONL")
    build.add_argument("--examples", type=Path, nargs="+", default=[Path("datasets")],
                       help="folders of <reviewer>/<id>.yaml examples (derived ones too)")
    build.add_argument("--out", type=Path, default=Path("build/data"))
    build.add_argument("--eval-fraction", type=float, default=DEFAULT_EVAL_FRACTION,
                       help="share of roots held out for eval (a stable hash of each root id)")
    build.add_argument("--tokenizer", help="count token lengths with this base model's tokenizer: what "
                       "--base-model takes (a known name, a folder, a .gguf...); default: an estimate")
    build.add_argument("--gguf-file", help="GGUF file inside --tokenizer")
    build.add_argument("--allow-unreviewed", action="store_true",
                       help="also use derived examples tagged review-before-use (clean twins nobody checked)")
    build.set_defaults(handler=_data_build)

    evidence = data_sub.add_parser("evidence", help="write real analyzer output into examples' check_output")
    evidence.add_argument("files", type=Path, nargs="*", help="example files (default: every file under --examples)")
    evidence.add_argument("--examples", type=Path, default=Path("datasets"))
    evidence.add_argument("--refresh", action="store_true", help="also replace existing check_output")
    evidence.set_defaults(handler=_data_evidence)

    augment = data_sub.add_parser("augment", help="derive examples (clean twins, combined multi-file PRs)")
    augment.add_argument("--examples", type=Path, default=Path("datasets"))
    augment.add_argument("--out", type=Path, default=Path("datasets-derived"),
                         help="separate folder for derived examples (never the curated one)")
    augment.add_argument("--reviewer", action="append", help="only these reviewers (repeatable)")
    augment.add_argument("--seed", type=int, default=0)
    augment.add_argument("--eval-fraction", type=float, default=DEFAULT_EVAL_FRACTION,
                         help="sources whose root falls in this eval split are never derived from "
                              "(pass what data build gets)")
    augment.add_argument("--fill-to", type=int, default=DEFAULT_FILL_TO,
                         help="combined examples fill each reviewer up to this many examples")
    augment.set_defaults(handler=_data_augment)

    scan = subparsers.add_parser("scan", help="profile a repository (languages, frameworks, tests, CI)")
    scan.add_argument("path", type=Path)
    scan.add_argument("--out", type=Path, help="write the profile JSON here (default: stdout)")
    scan.add_argument("--harvest", action="store_true",
                      help="also propose candidate examples from git history (for a human to curate)")
    scan.add_argument("--harvest-out", type=Path, default=Path("build/harvest"),
                      help="folder for harvested candidates (never datasets/)")
    scan.add_argument("--max-commits", type=int, default=500)
    scan.set_defaults(handler=_scan)

    train = subparsers.add_parser("train", help="LoRA SFT of one reviewer (--reviewer) or all (--all)")
    from training.config import add_arguments

    add_arguments(train)
    train.set_defaults(handler=_train)

    adapters = subparsers.add_parser("adapters", help="inspect trained adapters")
    adapters_sub = adapters.add_subparsers(dest="adapters_command", metavar="ADAPTERS_COMMAND", required=True)
    inspect = adapters_sub.add_parser("inspect", help="count LoRA tensors by tower (language/vision/audio)")
    inspect.add_argument("dir", type=Path, help="a PEFT adapter folder")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(handler=_adapters_inspect)


def _data_build(args: argparse.Namespace) -> int:
    from training.dataset_build import DatasetError, build_dataset, format_report, tokenizer_counter

    counter, name = None, "approx (3.5 chars/token)"
    if args.tokenizer:
        from transformers import AutoTokenizer

        from reviewers.models import resolve_base_model

        ref = resolve_base_model(str(Path(args.tokenizer) / args.gguf_file) if args.gguf_file else args.tokenizer)
        tokenizer = AutoTokenizer.from_pretrained(ref.source, **ref.load_kwargs())
        counter, name = tokenizer_counter(tokenizer), args.tokenizer
    try:
        report = build_dataset(list(args.examples), args.out, args.eval_fraction, counter, name,
                               allow_unreviewed=args.allow_unreviewed)
    except DatasetError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(format_report(report))
    print(f"wrote {args.out}/<reviewer>/train.jsonl, eval.jsonl and {args.out}/report.json")
    return 0


def _data_evidence(args: argparse.Namespace) -> int:
    from training.dataset_build import example_files
    from training.evidence import add_evidence

    files = list(args.files) or example_files(args.examples)
    report = add_evidence(files, refresh=args.refresh,
                          progress=lambda message: print(f"calora: {message}", file=sys.stderr, flush=True))
    for error in report.errors:
        print(f"calora: {error}", file=sys.stderr)
    print(f"{len(report.written)} example(s) written ({len(report.with_findings)} with analyzer findings), "
          f"{len(report.unchanged)} already had check_output, {len(report.errors)} error(s)")
    return 1 if report.errors else 0


def _data_augment(args: argparse.Namespace) -> int:
    from training.augment import augment_dataset

    written = augment_dataset(args.examples, args.out, reviewers=args.reviewer, seed=args.seed,
                              eval_fraction=args.eval_fraction, fill_to=args.fill_to)
    skipped = written.pop("eval-split-skipped", 0)
    for kind, count in sorted(written.items()):
        print(f"{kind:<14}{count:>5}")
    print(f"{sum(written.values())} derived examples under {args.out}/; {skipped} eval-split source(s) not "
          f"derived from. Next: calora data evidence --examples {args.out}; "
          f"calora data build --examples {args.examples} {args.out}")
    return 0


def _scan(args: argparse.Namespace) -> int:
    from training.scan import harvest_candidates, scan_repository, write_candidates

    profile = scan_repository(args.path)
    text = profile.model_dump_json(indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    if args.harvest:
        if "datasets" in args.harvest_out.resolve().parts:
            print("--harvest-out must not be inside datasets/: candidates need a human's review first",
                  file=sys.stderr)
            return 2
        candidates = harvest_candidates(args.path, max_commits=args.max_commits)
        paths = write_candidates(candidates, args.harvest_out)
        print(f"proposed {len(paths)} candidate examples under {args.harvest_out}/ for curation", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.train import run_from_args

    return run_from_args(args)


def _adapters_inspect(args: argparse.Namespace) -> int:
    from training.adapters_inspect import format_inspection, inspect_adapter

    report = inspect_adapter(args.dir)
    print(json.dumps(report.model_dump(), indent=2) if args.json else format_inspection(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.commands")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
