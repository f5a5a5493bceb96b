"""What the analyzers find on their own (issue #13 item 7): per tool, the must-finds of eval/scenarios hit by
evidence alone, findings on the clean (approve) scenarios, and wall time per review; plus, on the real
pull-request diffs in ../shared/github/diffs/real (no expected answers), how many findings each tool adds
and how long a review takes. No model runs: `calora review --backend none` for every case.

    python bench/evidence_bench.py [--out bench/results/evidence-cpu-2core.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.review_runner import grade_scenarios
from reviewers.checks.sandbox import network_isolation
from reviewers.checks.tools import TOOLS
from reviewers.pipeline import run_pipeline

REAL = ROOT.parent / "shared" / "github" / "diffs" / "real"


def real_diff_figures() -> dict:
    per_tool: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    walls = []
    for diff in sorted(REAL.glob("*.diff")):
        started = time.perf_counter()
        run = run_pipeline(diff.read_bytes(), None)
        walls.append(time.perf_counter() - started)
        for finding in run.check_findings:
            per_tool[finding.tool] += 1
            severities[finding.severity.value] += 1
    return {"diffs": len(walls), "findings_per_tool": dict(per_tool), "findings_by_severity": dict(severities),
            "wall_p50_s": statistics.median(walls), "wall_max_s": max(walls), "wall_s": walls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT / "eval" / "scenarios")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "evidence-cpu-2core.json")
    args = parser.parse_args()
    graded = grade_scenarios(args.cases, None)
    overall = graded.overall
    tools = [row.model_dump() for row in graded.tools]
    real = real_diff_figures()
    where = str(args.cases.relative_to(ROOT) if args.cases.is_relative_to(ROOT) else args.cases)
    report = {
        "bench": "evidence", "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "tools_installed": [tool.name for tool in TOOLS if tool.locate() is not None],
        "network_isolation": bool(network_isolation()),
        "cases": where,
        "scenarios": overall.model_dump(), "per_tool": tools, "real_diffs": real,
        "targets": {"must_find_recall_min": 0.40, "approve_findings_max": 1},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{where}, evidence alone: must-finds hit {overall.must_finds_hit}/{overall.must_finds} "
          f"({overall.finding_recall:.0%}; target >= 40%), findings on the {overall.approve_scenarios} approve "
          f"scenarios {overall.approve_findings} (target <= 1), scenarios passed whole {overall.passed}/"
          f"{overall.scenarios}, wall p50 {overall.wall_p50_s:.2f} s per review")
    print("\n| tool | must-finds hit | hit by this tool alone | findings on approve scenarios | other noise |"
          " findings on the 21 real diffs |")
    print("|---|---|---|---|---|---|")
    for row in tools:
        name = row["source"].removeprefix("checks:")
        print(f"| {name} | {row['must_finds_hit']} | {row['alone_hit']} | {row['approve_findings']} | "
              f"{row['noise_findings']} | {real['findings_per_tool'].get(name, 0)} |")
    print(f"\nreal diffs: {real['diffs']} reviews, wall p50 {real['wall_p50_s']:.2f} s, max {real['wall_max_s']:.2f} s;"
          f" findings by severity {real['findings_by_severity']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
