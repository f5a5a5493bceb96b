"""Would the adapters' verdict be worth acting on where the analyzers found nothing?

Round 5's adapters decide better than they find: with every finding posted they get far more decisions
right, with many invented findings. A bot could act on the verdict alone: when no analyzer finding is
posted but the adapter says revise or block, withhold approval (a neutral check, "needs a human look")
instead of approving, and post no invented line comment. This reads the committed end-to-end runs, the
same adapters S and the same evidence in each pair (confirmed-only posting vs every finding posted), and
counts, over the scenarios the default review approves, how many the adapter would hold back: the
defective ones (revise or block expected) and the clean ones (approve expected).

    python hold_approval.py   (from this folder)
"""

from __future__ import annotations

import json
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent
PAIRS = {  # set: (default review with adapters S, the same with every finding posted)
    "eval/scenarios (80)": ("round5/e2e_cpu_confirmed", "round5/e2e_cpu_all"),
    "scenarios-blind (40)": ("rules-and-blind/bl_S", "rules-and-blind/bl_Sall"),
    "scenarios-blind2 (40)": ("rules-and-blind/b2_S", "rules-and-blind/b2_Sall"),
    "scenarios-blind3 (40)": ("semgrep-and-blind3/b3_S", "semgrep-and-blind3/b3_Sall"),
}


def scenarios(run: str) -> dict[str, dict]:
    data = json.loads((REPORTS / run / "review_results.json").read_text(encoding="utf-8"))
    return {s["case_id"]: s for s in data["scenarios"]}


def main() -> None:
    rows = []
    totals = [0] * 6
    for name, (default_run, all_run) in PAIRS.items():
        default, every = scenarios(default_run), scenarios(all_run)
        approved = [c for c, s in default.items() if s["decision"] == "approve"]
        held = {c for c in approved if every[c]["decision"] != "approve"}
        counts = []
        for expected in ("approve", "block", "revise"):
            group = [c for c in approved if default[c]["expected_verdict"] == expected]
            counts += [len([c for c in group if c in held]), len(group)]
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        rows.append((name, *counts))
    rows.append(("all four", *totals))
    print("| set | clean changes held back | approved blocks held back | approved revises held back |")
    print("|---|---|---|---|")
    for name, ca, cn, ba, bn, ra, rn in rows:
        print(f"| {name} | {ca}/{cn} | {ba}/{bn} | {ra}/{rn} |")


if __name__ == "__main__":
    main()
