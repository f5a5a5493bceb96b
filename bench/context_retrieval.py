"""What repository context costs a `calora review --git`: a real 20-file commit of this project, the whole
pipeline without a model and without analyzers, with and without retrieval, median of 5 (issue #16:
retrieval adds at most 1 s on the 2-core CPU).

The commit is 37d33a7 (the analyzer registry: 20 Python, YAML and test files, 2,400 added lines), read the
way `calora review --git 37d33a7~1..37d33a7` reads it: the diff and the changed files from git, the context
through `GitSource` at the commit, the conventions from its parent. Each run starts cold: a new source (its
tree listed again) and an empty profile cache.

    python bench/context_retrieval.py [--range 37d33a7~1..37d33a7] [--runs 5] [--out bench/results/context-cpu-2core.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reviewers import pipeline
from reviewers.commands import git_sources, read_git_range
from reviewers.pipeline import run_pipeline


def timed(rev_range: str, with_context: bool) -> tuple[float, dict[str, object]]:
    """Seconds for one cold `--git` review (reading the range included) and what the context held."""
    pipeline.PROFILES.clear()
    said: list[str] = []
    started = time.perf_counter()
    diff, contents = read_git_range(rev_range)
    head, base = git_sources(rev_range) if with_context else (None, None)
    run = run_pipeline(diff, None, file_contents=contents, analyzers=(), context_source=head, base_source=base,
                       progress=said.append)
    seconds = time.perf_counter() - started
    snippets = [s for r in run.requests for s in r.context]
    return seconds, {
        "slices": len(run.requests), "files": len(contents), "snippets": len(snippets),
        "context_chars": sum(len(s.text) for s in snippets),
        "reads_and_listings": next((m for m in said if m.startswith("context:")), ""),
        "kinds": sorted({s.why.split(" ")[0] for s in snippets}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--range", default="37d33a7~1..37d33a7", help="a git range of this repository")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "context-cpu-2core.json")
    args = parser.parse_args()
    os.chdir(ROOT)  # `--git` reads the repository it runs in
    timed(args.range, True)  # warm the page cache and the parsers' first load
    without, with_context, shape = [], [], {}
    for _ in range(args.runs):
        seconds, _ = timed(args.range, False)
        without.append(seconds)
        seconds, shape = timed(args.range, True)
        with_context.append(seconds)
    report = {
        "bench": "context_retrieval", "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine while it ran
        "range": args.range, "runs": args.runs, **shape,
        "seconds_without_context": without, "seconds_with_context": with_context,
        "median_without_s": statistics.median(without), "median_with_s": statistics.median(with_context),
        "added_s": statistics.median(with_context) - statistics.median(without), "target_added_s": 1.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.range}: {shape['files']} files, {shape['slices']} slices, {shape['snippets']} snippets "
          f"({shape['reads_and_listings']}); without context {report['median_without_s']:.2f} s, with "
          f"{report['median_with_s']:.2f} s (median of {args.runs}); retrieval adds {report['added_s']:.2f} s "
          f"(target <= 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
