"""What the analyzers cost a review: a 20-file mixed PR, the whole pipeline without a model, with and without
the analyzers, median of 5 (issue #13: at most 3 s added on the 2-core CPU).

The PR is cut from the bundled sample, three orchestration scenarios (Kubernetes, Terraform: checkov, the
slowest analyzer to start, runs) and the real diffs in ../shared/github/diffs/real (Python, TSX, TS, Vue,
SQL, Dockerfiles, compose, workflows): the first 20 file sections that a reviewer takes, in a fixed order,
so every run reviews the same bytes.

    python bench/checks_bench.py [--runs 5] [--out bench/results/checks-cpu-2core.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reviewers.checks.sandbox import network_isolation
from reviewers.checks.tools import TOOLS
from reviewers.pipeline import run_pipeline
from reviewers.routing import route_file

REAL = ROOT.parent / "shared" / "github" / "diffs" / "real"
SECTION = re.compile(r"^diff --git ", re.MULTILINE)


def file_sections(text: str) -> list[str]:
    starts = [m.start() for m in SECTION.finditer(text)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def twenty_file_pr(count: int = 20) -> tuple[str, list[str]]:
    """The first `count` reviewable file sections of the sample and the real diffs, one per path."""
    orchestration = sorted((ROOT / "eval" / "scenarios" / "orchestration").glob("*/diff.patch"))[:3]
    sources = [ROOT / "samples" / "storefront.diff", *orchestration, *sorted(REAL.glob("*.diff"))]
    picked: dict[str, str] = {}
    kinds: dict[str, int] = {}
    for source in sources:
        for section in file_sections(source.read_text(errors="replace")):
            header = section.splitlines()[0]
            path = header.rsplit(" b/", 1)[-1]
            if path in picked or "Binary files" in section or "\n@@ " not in section:
                continue
            if not route_file(path).reviewers:
                continue
            kind = Path(path).suffix or Path(path).name
            if kinds.get(kind, 0) >= 4:  # a mix, not 20 markdown-ish files of one kind
                continue
            kinds[kind] = kinds.get(kind, 0) + 1
            picked[path] = section
            if len(picked) == count:
                return "".join(picked.values()), list(picked)
    return "".join(picked.values()), list(picked)


def timed(diff: str, analyzers) -> tuple[float, int]:
    started = time.perf_counter()
    run = run_pipeline(diff, None, analyzers=analyzers)
    return time.perf_counter() - started, len(run.check_findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "checks-cpu-2core.json")
    args = parser.parse_args()
    diff, paths = twenty_file_pr()
    timed(diff, None)  # warm the page cache and the tools' first start
    without, with_tools, findings = [], [], 0
    for _ in range(args.runs):
        seconds, _ = timed(diff, ())
        without.append(seconds)
        seconds, findings = timed(diff, None)
        with_tools.append(seconds)
    report = {
        "bench": "checks", "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "files": len(paths), "paths": paths, "diff_bytes": len(diff.encode()), "runs": args.runs,
        "tools": [tool.name for tool in TOOLS if tool.locate() is not None],
        "network_isolation": bool(network_isolation()),
        "seconds_without_analyzers": without, "seconds_with_analyzers": with_tools,
        "median_without_s": statistics.median(without), "median_with_s": statistics.median(with_tools),
        "added_s": statistics.median(with_tools) - statistics.median(without),
        "evidence_findings": findings, "target_added_s": 3.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(paths)} files, {report['diff_bytes']} bytes: without analyzers {report['median_without_s']:.2f} s, "
          f"with {report['median_with_s']:.2f} s (median of {args.runs}); analyzers add {report['added_s']:.2f} s "
          f"(target <= 3 s), {findings} evidence finding(s); tools: {', '.join(report['tools'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
