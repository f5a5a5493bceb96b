"""How often round 5's adapter findings were right on the held-out split, split by whether a finding confirms an
analyzer finding listed in its prompt (same path, lines within 1) or stands alone.

  python <this file> DATA    -> held-precision.txt beside this file

DATA: the data folder as next-round.sh builds it (`calora data build ... --tokenizer` with the base model).

"Right" is the eval's own rule (`eval.metrics.finding_hits` against the case's expected findings). The result
set each reviewer's default for posting findings (`CALORA_REVIEWER_FINDINGS`, reviewers/backends/factory.py).
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from eval.cases import load_jsonl_cases
from eval.metrics import finding_hits
from reviewers.contract import Finding

EVIDENCE_LINE = re.compile(r"^- (?P<path>.+?):(?P<line>\d+)(?:-\d+)? \[(?P<severity>\w+), \w+\] ")


def count(data: Path) -> collections.Counter:
    tally: collections.Counter = collections.Counter()
    for reviewer, pick in json.loads((HERE / "selection.json").read_text()).items():
        name = pick["candidate"]
        results = {r["case_id"]: r for r in json.loads((HERE / f"held_{name}" / f"{name}.constrained.json")
                                                       .read_text())["results"]}
        path = data / reviewer / "eval.jsonl"
        records = {json.loads(line)["id"]: json.loads(line) for line in path.read_text().splitlines() if line}
        for case in load_jsonl_cases(path):
            result = results.get(case.id)
            if not result or not result["output"]:
                continue
            evidence = [m.groupdict() for m in map(EVIDENCE_LINE.match,
                                                  records[case.id]["request"]["check_output"].splitlines()) if m]
            for raw in result["output"]["findings"]:
                finding = Finding.model_validate(raw)
                near = [e for e in evidence if e["path"] == finding.path and abs(int(e["line"]) - finding.line) <= 1]
                right = "right" if any(finding_hits(finding, must) for must in case.must_find) else "wrong"
                tally[("confirms an analyzer" if near else "alone", right)] += 1
                if near and all(e["severity"] == "nit" for e in near):
                    tally[("raises an analyzer's nit", right)] += 1
    return tally


if __name__ == "__main__":
    tally = count(Path(sys.argv[1]))
    lines = [f"{kind}: {tally[(kind, 'right')]} right of {tally[(kind, 'right')] + tally[(kind, 'wrong')]}"
             for kind in ("alone", "confirms an analyzer", "raises an analyzer's nit")]
    (HERE / "held-precision.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
