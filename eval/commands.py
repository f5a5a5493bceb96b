"""`calora eval run|sweep|review|report`, `calora promote`, `calora gate style`: the thin shell around eval/.

Heavy imports (torch, transformers, matplotlib) stay inside the handlers so `calora --help` is fast.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from reviewers.backends import BACKEND_NAMES
from reviewers.commands import add_reviewer_findings_argument
from reviewers.models import BASE_MODEL_HELP, DEFAULT_MAX_NEW_TOKENS

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluation = subparsers.add_parser("eval", help="evaluate reviewers: run, sweep checkpoints, report")
    eval_sub = evaluation.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=True)

    run = eval_sub.add_parser("run", help="evaluate one model (base, or base + adapters) over eval cases")
    _add_case_arguments(run)
    adapter = run.add_mutually_exclusive_group()
    adapter.add_argument("--adapter", type=Path, help="one PEFT adapter folder, used for every reviewer evaluated")
    adapter.add_argument("--adapters", type=Path, help="a folder of <reviewer>/ PEFT adapters (adapters/) or of <reviewer>/adapter/ (a train --all run)")
    _add_model_arguments(run)
    run.add_argument("--label", help="name in tables and charts (default: base, adapter or the adapter folder name)")
    run.add_argument("--out", type=Path, default=Path("build/eval"), help="folder for results JSON + markdown")
    run.set_defaults(handler=_run)

    sweep = eval_sub.add_parser("sweep", help="evaluate every checkpoint of a training run (runs/<name>/)")
    sweep.add_argument("run_dir", type=Path, help="a training run folder, or a folder of per-reviewer runs")
    sweep.add_argument("--cases", type=Path,
                       help="eval cases (default: <data_dir>/<reviewer>/eval.jsonl from the run's config.json)")
    sweep.add_argument("--include-base", action="store_true", help="also evaluate the base model (step 0)")
    _add_model_arguments(sweep)
    sweep.add_argument("--out", type=Path, help="folder for results (default: <run_dir>/eval)")
    sweep.set_defaults(handler=_sweep)

    report = eval_sub.add_parser("report", help="HTML + markdown report with PNG charts")
    report.add_argument("--results", type=Path, nargs="+",
                        help="results JSONs of `eval run` (default: every run in the history)")
    report.add_argument("--history", type=Path, help="score history SQLite (default eval/history.sqlite)")
    report.add_argument("--out", type=Path, default=Path("build/eval/report"), help="report folder")
    report.add_argument("--title", default="Reviewer evaluation")
    report.add_argument("--commands", type=Path, help="a text file of the commands that produced the results, "
                        "quoted in the report")
    report.add_argument("--notes", type=Path, help="a markdown file of findings, placed above the results")
    report.set_defaults(handler=_report)

    review = eval_sub.add_parser(
        "review", help="grade the final review (route, slice, evidence, reviewers, synthesis) on scenario folders",
        description="Run what a PR gets on every <reviewer>/<case>/ scenario and grade the final review: decision, "
        "must-finds hit, noise, false blocks, wall time. Writes results JSON, a markdown report and PNG charts.")
    review.add_argument("--cases", type=Path, default=Path("eval/scenarios"),
                        help="scenario folder <reviewer>/<case>/{diff.patch,expected.json} (default eval/scenarios)")
    review.add_argument("--reviewers", nargs="+", metavar="NAME",
                        help="grade only the scenarios of these reviewer folders (the pipeline still runs every reviewer)")
    review.add_argument("--backend", choices=("none", *BACKEND_NAMES), default="none",
                        help="none: evidence only, no model (default); otherwise built as `calora review` builds it")
    review.add_argument("--base-model", help="a .gguf file, a model folder or a hub id (as for `calora review`)")
    review.add_argument("--adapters", type=Path, help="folder of per-reviewer adapters (as for `calora review`)")
    review.add_argument("--max-new-tokens", type=int, help="answer length cap per slice")
    review.add_argument("--ask-base-model", action="store_true", default=None,
                        help="also ask reviewers without an adapter of their own (the bare base model); "
                             "default: CALORA_ASK_BASE_MODEL, else only for --backend openai")
    add_reviewer_findings_argument(review)
    review.add_argument("--budget", type=int, default=3000, help="diff tokens per slice (default 3000, as `calora review`)")
    review.add_argument("--label", help="name in the report (default: the backend, or 'evidence' for none)")
    review.add_argument("--no-charts", action="store_true", help="write the JSON and markdown only")
    review.add_argument("--save-evidence", type=Path, metavar="DIR",
                        help="write each scenario's analyzer report here (to grade models where the tools are absent)")
    review.add_argument("--evidence-dir", type=Path, metavar="DIR",
                        help="reuse analyzer reports saved by --save-evidence instead of running the analyzers")
    review.add_argument("--context", action=argparse.BooleanOptionalAction, default=True,
                        help="reviewers get repository context from each scenario's repo/ snapshot, and the "
                        "needs_context scenarios run again without it for the ablation (default); --no-context: "
                        "the diff alone")
    review.add_argument("--out", type=Path, default=Path("build/eval/review"), help="folder for results, report, charts")
    review.set_defaults(handler=_review)

    check = eval_sub.add_parser("check", help="check results JSONs against the gates (what promote would decide)")
    check.add_argument("--results", type=Path, nargs="+", required=True,
                       help="results of `eval run`; files with the same label (raw + constrained) form one model")
    check.add_argument("--gates", type=Path, default=None, help="gates YAML (default eval/gates.yml)")
    check.set_defaults(handler=_check)

    promote = subparsers.add_parser("promote", help="install the best checkpoint of a run that passes every gate")
    promote.add_argument("run_dir", type=Path, help="a training run folder (evaluated with `calora eval sweep`)")
    promote.add_argument("--gates", type=Path, default=None, help="gates YAML (default eval/gates.yml)")
    promote.add_argument("--history", type=Path, help="score history SQLite (default eval/history.sqlite)")
    promote.add_argument("--adapters-dir", type=Path, default=Path("adapters"),
                         help="where promoted adapters are installed as <reviewer>/")
    promote.add_argument("--dry-run", action="store_true", help="decide and print, install and record nothing")
    promote.set_defaults(handler=_promote)

    gate = subparsers.add_parser("gate", help="behaviour gates for models")
    gate_sub = gate.add_subparsers(dest="gate_command", metavar="GATE", required=True)
    style = gate_sub.add_parser("style", help="code-style gate for the patch author model: passed/total")
    style.add_argument("--cases", type=Path, default=None, help="folder of style cases (default eval/style_cases)")
    style.add_argument("--adapter", type=Path, help="PEFT adapter of the patch author model")
    _add_model_arguments(style, decoding=False)
    style.add_argument("--min-pass", type=float, default=1.0, help="share of cases that must pass (exit 1 below)")
    style.add_argument("--out", type=Path, help="write the results JSON here")
    style.set_defaults(handler=_gate_style)


def _add_case_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=Path, required=True,
                        help="eval.jsonl, a `calora data build` folder, or a scenario folder <reviewer>/<case>/")
    parser.add_argument("--reviewers", nargs="+", help="only these reviewers")
    parser.add_argument("--limit", type=int, help="at most this many cases per reviewer (in id order)")


def _add_model_arguments(parser: argparse.ArgumentParser, decoding: bool = True) -> None:
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="transformers")
    parser.add_argument("--base-model", help=BASE_MODEL_HELP)
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="auto: bf16 on CUDA, fp32 on CPU; float32 makes GPU answers match a CPU run")
    if decoding:
        parser.add_argument("--batch-size", type=int, default=1,
                            help="cases of one reviewer answered together (throughput; latency becomes a batch's)")
        parser.add_argument("--decoding", choices=("raw", "constrained", "both"), default="raw",
                            help="raw: no schema constraint (raw contract validity); constrained: engine only")
        parser.add_argument("--history", type=Path, help="score history SQLite (default eval/history.sqlite)")
        parser.add_argument("--no-history", action="store_true", help="do not record in the score history")


_NOT_OPTIONS = {"handler", "command", "eval_command", "gate_command", "verbose"}


def _command_line(args: argparse.Namespace, *words: str) -> str:
    """The command as parsed, every option spelled out (defaults too), for the record of a run."""
    parts = ["calora", *words]
    for key, value in vars(args).items():
        if key in _NOT_OPTIONS or value is None or value is False:
            continue
        if key in ("run_dir",):
            parts.append(shlex.quote(str(value)))
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, list):
            parts += [flag, *(shlex.quote(str(v)) for v in value)]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def _run(args: argparse.Namespace) -> int:
    from eval.cases import CaseError
    from eval.generation import UnsupportedDecodingError
    from eval.workflow import EvalSpec, WorkflowError, run_eval

    spec = EvalSpec(
        cases=args.cases, reviewers=args.reviewers, limit=args.limit, adapter=args.adapter, adapters=args.adapters,
        backend=args.backend, base_model=args.base_model, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, device=args.device, dtype=args.dtype, decoding=args.decoding, label=args.label, out=args.out, history=None if args.no_history else args.history,
        record_history=not args.no_history, command=_command_line(args, "eval", "run"),
    )
    try:
        outcome = run_eval(spec)
    except (CaseError, UnsupportedDecodingError, WorkflowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(outcome.markdown)
    for path in outcome.paths:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from eval.cases import CaseError
    from eval.workflow import WorkflowError, sweep

    try:
        outcome = sweep(
            args.run_dir, cases=args.cases, include_base=args.include_base, backend=args.backend,
            base_model=args.base_model, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
            device=args.device, dtype=args.dtype, decoding=args.decoding, out=args.out, history=None if args.no_history else args.history,
            record_history=not args.no_history, command=_command_line(args, "eval", "sweep"),
        )
    except (CaseError, WorkflowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(outcome.markdown)
    return 0


def _review(args: argparse.Namespace) -> int:
    import time

    from eval.cases import CaseError
    from eval.review_grading import ReviewGradingInfo, context_line
    from eval.review_runner import ScenarioError, grade_scenarios, write_outputs
    from eval.runner import git_commit
    from reviewers.commands import ReviewInputError, _make_backend, _split_names
    from reviewers.slicing import SliceLimits

    def progress(message: str) -> None:
        print(f"calora: {message}", file=sys.stderr, flush=True)

    try:
        reviewers = list(_split_names(args.reviewers) or []) or None
        started = time.perf_counter()
        backend = None if args.backend == "none" else _make_backend(args, progress)
        info = ReviewGradingInfo(
            label=args.label or ("evidence" if backend is None else args.backend), backend=args.backend,
            base_model=args.base_model, adapters=str(args.adapters) if args.adapters else None,
            cases_path=str(args.cases), reviewers=reviewers, load_s=time.perf_counter() - started,
            command=_command_line(args, "eval", "review"), git_commit=git_commit(), context=args.context,
        )
        run = grade_scenarios(args.cases, backend, reviewers, limits=SliceLimits(budget_tokens=args.budget),
                              info=info, progress=progress, evidence_dir=args.evidence_dir,
                              save_evidence=args.save_evidence, context=args.context)
    except (CaseError, ScenarioError, ReviewInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_outputs(run, args.out, charts=not args.no_charts)
    o = run.overall
    print(f"{o.passed}/{o.scenarios} scenarios pass whole; decision right {o.decision_accuracy:.0%}; "
          f"must-finds hit {o.must_finds_hit}/{o.must_finds}; noise findings {o.noise_findings}; false blocks "
          f"{o.false_blocks}/{o.approve_scenarios}; blocks approved {o.blocks_approved}/{o.block_scenarios}")
    if line := context_line(run):
        print(line)
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from eval.history import HistoryError, ScoreHistory
    from eval.report import ReportError, load_runs_for_report, write_report

    try:
        runs = load_runs_for_report(args.results, ScoreHistory(args.history) if not args.results else None)
        commands = args.commands.read_text(encoding="utf-8") if args.commands else None
        notes = args.notes.read_text(encoding="utf-8") if args.notes else None
        paths = write_report(runs, args.out, title=args.title, commands=commands, notes=notes)
    except (ReportError, HistoryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    from eval.gates import GatesError
    from eval.promote import PromotionError, check_results

    try:
        decisions = check_results(args.results, args.gates)
    except (GatesError, PromotionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for decision in decisions:
        print(decision.explain().replace("promote ", "passes: ", 1))
    return 0 if all(d.promoted for d in decisions) else 1


def _promote(args: argparse.Namespace) -> int:
    from eval.gates import GatesError
    from eval.promote import PromotionError, promote_run

    try:
        outcomes = promote_run(args.run_dir, gates_path=args.gates, history_path=args.history,
                               adapters_dir=args.adapters_dir, dry_run=args.dry_run)
    except (GatesError, PromotionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    refused = False
    for outcome in outcomes:
        print(outcome.summary())
        refused |= not outcome.decision.promoted
    return 1 if refused else 0


def _gate_style(args: argparse.Namespace) -> int:
    from eval.style_gate import StyleCaseError, default_style_cases_dir, load_style_cases, run_style_gate

    try:
        cases = load_style_cases(args.cases or default_style_cases_dir())
    except StyleCaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from eval.workflow import load_chat_model

    model = load_chat_model(args.backend, args.base_model, args.adapter, args.max_new_tokens, args.device,
                            args.dtype)
    report = run_style_gate(model, cases)
    print(report.summary())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return 0 if report.pass_rate >= args.min_pass else 1
