"""Does an adapter judge the code, or only whether the prompt carries an analyzer finding?

Splits a held-out run's verdicts by two things: the expected verdict and whether the prompt's "Automated
checks" block lists any finding. Reads the data build the run graded (eval.jsonl per reviewer) and the
run's `<name>.constrained.json` / `.raw.json` results.

    python session10/evidence_shortcut.py --data /tmp/d5 round5/held_P2/P2.constrained.json ...
    (from the report's folder; --data: the data build of the round, `calora data build` output)
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

VERDICTS = ("approve", "revise", "block")


def prompt_has_evidence(user_text: str) -> bool:
    checks = user_text.split("Diff to review", 1)[0]
    return "Automated checks" in checks and "\n- none" not in checks


def load_expected(data: Path) -> dict[str, tuple[bool, str]]:
    expected = {}
    for path in sorted(data.glob("*/eval.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            user = next(m["content"] for m in record["messages"] if m["role"] == "user")
            answer = json.loads(next(m["content"] for m in record["messages"] if m["role"] == "assistant"))
            expected[record["id"]] = (prompt_has_evidence(user), answer["verdict"])
    return expected


def split(results: list[dict], expected: dict[str, tuple[bool, str]]) -> dict[str, str]:
    right, total = Counter(), Counter()
    for result in results:
        evidence, verdict = expected[result["case_id"]]
        got = (result.get("output") or {}).get("verdict")
        total[evidence, verdict] += 1
        right[evidence, verdict] += got == verdict
    cells = {}
    for evidence in (False, True):
        for verdict in VERDICTS:
            key = (evidence, verdict)
            cells[f"{'evidence' if evidence else 'no evidence'} · {verdict}"] = f"{right[key]}/{total[key]}"
        n = sum(total[evidence, v] for v in VERDICTS)
        cells[f"{'evidence' if evidence else 'no evidence'} · all"] = \
            f"{sum(right[evidence, v] for v in VERDICTS)}/{n} ({100 * sum(right[evidence, v] for v in VERDICTS) / n:.0f}%)"
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    expected = load_expected(args.data)
    rows = {run.name.split(".")[0] + (" raw" if ".raw." in run.name else ""):
            split(json.loads(run.read_text(encoding="utf-8"))["results"], expected) for run in args.runs}
    columns = list(next(iter(rows.values())))
    print("| run | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells[c] for c in columns) + " |")


if __name__ == "__main__":
    main()
