"""Benchmark: route and slice a ~20 MB, 5,000-file diff of mixed languages.

The diff is built deterministically in memory (seeded), so every run measures the same input. Only
`slice_diff` is timed (decoding the bytes, parsing, routing, splitting, packing); building the diff
is not. Prints seconds, MB/s, peak memory and the number of slices, and writes
bench/results/slicing-<label>.json (default label: cpu-<cores>core; the host name is inside).

The code before issue #18's speed work (commit `BASELINE_COMMIT`, read with `git show` into a private
package) is timed in the same run, its runs alternating with the current code's so that a busy machine
slows both alike; the ratio is printed and both plans must be equal (their dumps' digests), or the
bench fails. Each plan is dropped once timed, so that no run's garbage collector walks an earlier plan.
Without git, the ratio is taken against the figure in the committed results file.

    .venv/bin/python bench/slicing_bench.py            # full size (target: 50 MB/s on 2 cores)
    .venv/bin/python bench/slicing_bench.py --files 500 --megabytes 2
    taskset -c 0,1 .venv/bin/python bench/slicing_bench.py --label cpu-2core-<machine>
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from reviewers.slicing import SliceLimits, slice_diff

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The last commit before the parser, router and slicer were made faster (issue #18).
BASELINE_COMMIT = "4448cba46663561275f7ad07709399ba659d8594"
TARGET_MB_PER_SECOND = 50.0

# (weight, path template, line style): a PR-like mix; {d} is a folder, {n} a name.
FILE_KINDS: tuple[tuple[int, str, str], ...] = (
    (22, "{d}/{n}.py", "python"),
    (6, "tests/{d}/test_{n}.py", "python"),
    (12, "src/{d}/{n}.ts", "ts"),
    (4, "src/{d}/{n}.test.ts", "ts"),
    (10, "src/components/{d}/{N}.tsx", "ts"),
    (5, "src/views/{d}/{N}.vue", "vue"),
    (5, "db/migrations/{d}_{n}.sql", "sql"),
    (2, "services/{d}/Dockerfile", "docker"),
    (2, ".github/workflows/{n}.yml", "yaml"),
    (3, "deploy/k8s/{d}/{n}.yaml", "yaml"),
    (3, "infra/{d}/{n}.tf", "hcl"),
    (1, "services/{d}/Makefile", "make"),
    (6, "internal/{d}/{n}.go", "go"),
    (5, "docs/{d}/{n}.md", "text"),
    (1, "frontend/{d}/package-lock.json", "json"),
    (1, "vendor/{d}/{n}.js", "ts"),
    (1, "static/{d}/{n}.png", "binary"),
)

# fmt: off
WORDS = (
    "user", "item", "order", "invoice", "account", "session", "token", "cache", "queue", "worker",
    "payload", "request", "response", "config", "retry", "limit", "batch", "index", "record", "event",
    "handler", "client", "server", "price", "total", "count", "name", "value", "result", "error",
    "status", "email", "address", "timeout", "buffer", "stream", "offset", "cursor", "page", "query",
)
# fmt: on

TEMPLATES: dict[str, tuple[str, ...]] = {
    "python": (
        "def {a}_{b}({c}: int, {d}: str | None = None) -> dict[str, int]:",
        '    """Return the {a} {b} for one {c}."""',
        "    {a} = {b}.get({c}, {d})",
        "    if {a} is None or {b} > {n}:",
        '        raise ValueError(f"{a} {{{b}}} is over the limit of {n}")',
        "    for {a} in {b}_{c}s:",
        "        {a}_{b} += {n}",
        "    return {{'{a}': {a}, '{b}': {b}}}",
        '    logger.info("%s %s", {a}, {b})',
        '    with open({a}_{b}_path, encoding="utf-8") as {c}:',
        "class {A}{B}({C}):",
        "",
    ),
    "ts": (
        "export async function {a}{B}({c}: {C}, {d}?: string): Promise<{A}> {{",
        "  const {a} = await {b}.{c}({d} ?? '{a}-{b}');",
        "  if (!{a} || {a}.{b} > {n}) {{",
        "    throw new Error(`{a} ${{{b}}} failed`);",
        "  }}",
        "  return {{ {a}, {b}: {c}.{d} }};",
        "}}",
        "  <{A} {b}={{{c}}} on{B}={{() => set{C}({n})}} />",
        "import {{ {A}, {B} }} from './{c}';",
        "",
    ),
    "vue": (
        "<template>",
        '  <div class="{a}-{b}" v-if="{c}">{{{{ {d} }}}}</div>',
        "</template>",
        '<script setup lang="ts">',
        "const {a} = ref<{A}>({n})",
        "const {b} = computed(() => {a}.value * {n})",
        "watch({a}, ({c}) => emit('{d}', {c}))",
        "</script>",
    ),
    "sql": (
        "ALTER TABLE {a}_{b} ADD COLUMN {c}_{d} integer NOT NULL DEFAULT {n};",
        "CREATE INDEX idx_{a}_{b} ON {a} ({b}, {c});",
        "UPDATE {a} SET {b} = {c} WHERE {d} > {n};",
        "SELECT {a}, {b}, count(*) FROM {c} GROUP BY {a}, {b};",
        "  {a}_{b} text,",
    ),
    "docker": (
        "FROM python:3.{n}-slim AS {a}",
        "RUN pip install --no-cache-dir {a}=={n}.0 {b}",
        "COPY {a}/ /app/{b}/",
        "ENV {A}_{B}={n}",
        "USER {a}",
    ),
    "yaml": (
        "  {a}:",
        "    {b}: {c}-{d}",
        "    replicas: {n}",
        "      - name: {a}-{b}",
        "        image: registry.example.com/{a}:{n}",
        "        run: make {a} {b}",
    ),
    "hcl": (
        'resource "aws_{a}" "{b}" {{',
        "  {c} = var.{d}_{a}",
        "  count = {n}",
        "}}",
    ),
    "make": ("{a}: {b} {c}", "\t$(PYTHON) -m {a}.{b} --{c} {n}", ".PHONY: {a} {b}"),
    "go": (
        "func ({a} *{A}) {B}({c} context.Context, {d} int) error {{",
        "\tif err := {a}.{b}({c}, {n}); err != nil {{",
        '\t\treturn fmt.Errorf("{a} {b}: %w", err)',
        "\t}}",
        "\treturn nil",
        "}}",
    ),
    "text": ("The {a} {b} now keeps the {c} for {n} days.", "- `{a}_{b}`: the {c} {d}.", "## {A} {B}", ""),
    "json": (
        '    "node_modules/{a}-{b}": {{',
        '      "version": "{n}.{n}.0",',
        '      "resolved": "https://registry.npmjs.org/{a}/-/{a}-{n}.0.0.tgz",',
        '      "integrity": "sha512-{a}{b}{c}{d}{n}",',
        "    }},",
    ),
}


def _fill(rng: random.Random, template: str) -> str:
    a, b, c, d = (rng.choice(WORDS) for _ in range(4))
    return template.format(a=a, b=b, c=c, d=d, A=a.title(), B=b.title(), C=c.title(), n=rng.randrange(1, 999))


def _line_pools(rng: random.Random, size: int = 4000) -> dict[str, list[str]]:
    """Pre-filled lines per style: drawing from a pool keeps building 20 MB fast (seconds, not tens)."""
    return {style: [_fill(rng, rng.choice(t)) for _ in range(size)] for style, t in TEMPLATES.items()}


def _file_diff(
    rng: random.Random, pools: dict[str, list[str]], path: str, style: str, target_bytes: int
) -> str:
    """One file's `git diff` section: a header and a few hunks of realistic lines."""
    kind = rng.random()
    if style == "binary":
        return (
            f"diff --git a/{path} b/{path}\nindex 1a2b3c4..5d6e7f8 100644\n"
            f"Binary files a/{path} and b/{path} differ\n"
        )
    pool = pools[style]
    if kind < 0.06:  # a new file: one all-added hunk, sometimes much longer than the budget
        count = max(3, target_bytes // 40)
        body = "".join("+" + rng.choice(pool) + "\n" for _ in range(count))
        return (
            f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1234567\n"
            f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{count} @@\n{body}"
        )
    if kind < 0.08:  # a deleted file
        count = max(3, target_bytes // 60)
        body = "".join("-" + rng.choice(pool) + "\n" for _ in range(count))
        return (
            f"diff --git a/{path} b/{path}\ndeleted file mode 100644\nindex 1234567..0000000\n"
            f"--- a/{path}\n+++ /dev/null\n@@ -1,{count} +0,0 @@\n{body}"
        )
    old_path = path
    header = f"diff --git a/{path} b/{path}\nindex 89abcde..f012345 100644\n"
    if kind < 0.12:  # a rename with edits
        old_path = path.replace("/", "/old_", 1) if "/" in path else "old_" + path
        header = (
            f"diff --git a/{old_path} b/{path}\nsimilarity index 88%\n"
            f"rename from {old_path}\nrename to {path}\nindex 89abcde..f012345 100644\n"
        )
    parts = [header, f"--- a/{old_path}\n+++ b/{path}\n"]
    size = 0
    old_line = new_line = 1
    while size < target_bytes:
        gap = rng.randrange(5, 80)
        old_line += gap
        new_line += gap
        lines = []
        old_n = new_n = 0
        for _ in range(rng.randrange(6, 40)):
            roll = rng.random()
            text = rng.choice(pool)
            if roll < 0.5:
                lines.append(" " + text)
                old_n += 1
                new_n += 1
            elif roll < 0.8:
                lines.append("+" + text)
                new_n += 1
            else:
                lines.append("-" + text)
                old_n += 1
        if old_n == 0 or new_n == 0:
            lines.append(" " + pool[0])
            old_n += 1
            new_n += 1
        hunk = (
            f"@@ -{old_line},{old_n} +{new_line},{new_n} @@ {rng.choice(WORDS)}\n" + "\n".join(lines) + "\n"
        )
        parts.append(hunk)
        size += len(hunk)
        old_line += old_n
        new_line += new_n
    return "".join(parts)


def build_diff(files: int = 5000, megabytes: float = 20.0, seed: int = 20240601) -> bytes:
    """A deterministic multi-language diff of about `megabytes` MB over `files` files."""
    rng = random.Random(seed)
    pools = _line_pools(rng)
    weights = [w for w, _, _ in FILE_KINDS]
    goal = int(megabytes * 1_000_000)
    written = 0
    sections = []
    for i in range(files):
        per_file = max(200, (goal - written) // (files - i))
        _, template, style = rng.choices(FILE_KINDS, weights=weights)[0]
        folder = f"{rng.choice(WORDS)}{i % 97}"
        name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{i}"
        path = template.format(d=folder, n=name, N=name.title().replace("_", ""))
        # sizes vary a lot between files, as in real pull requests
        target = int(per_file * rng.choice((0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 2.8)))
        sections.append(_file_diff(rng, pools, path, style, target))
        written += len(sections[-1])
    return "".join(sections).encode("utf-8")


def load_baseline(commit: str = BASELINE_COMMIT) -> Callable[..., object] | None:
    """`slice_diff` as it was at `commit`: its parser, router and slicer, imported from `git show` as a
    private package (the rest of `reviewers` is shared). None when git or the commit is not there."""
    package = "_slicing_baseline"
    if package in sys.modules:
        return sys.modules[f"{package}.slicing"].slice_diff  # type: ignore[no-any-return]
    sources = {}
    for name in ("unified_diff", "routing", "slicing"):
        shown = subprocess.run(
            ["git", "show", f"{commit}:reviewers/{name}.py"], check=False, cwd=REPO_ROOT, capture_output=True,
            text=True,
        )
        if shown.returncode != 0:
            return None
        sources[name] = shown.stdout
    root = ModuleType(package)
    root.__path__ = []  # a package with no folder: its modules are added by hand below
    sys.modules[package] = root
    for name in ("unified_diff", "routing", "slicing"):  # each imports only those before it
        source = sources[name]
        for dependency in ("unified_diff", "routing"):
            source = source.replace(f"from reviewers.{dependency} import", f"from {package}.{dependency} import")
        spec = importlib.util.spec_from_loader(f"{package}.{name}", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        code = compile(source, f"{commit[:7]}:reviewers/{name}.py", "exec")
        exec(code, module.__dict__)  # noqa: S102  # this repository's own code, as committed
    return sys.modules[f"{package}.slicing"].slice_diff  # type: ignore[no-any-return]


def _timed(function: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def run(
    files: int, megabytes: float, limits: SliceLimits, repeats: int = 5, baseline: bool = True
) -> dict[str, object]:
    diff = build_diff(files, megabytes)
    size_mb = len(diff) / 1_000_000
    old_slice_diff = load_baseline() if baseline else None
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    walls, cpus, old_walls, old_cpus = [], [], [], []
    digests: set[str] = set()
    old_digests: set[str] = set()
    # Untraced runs (tracemalloc slows allocation-heavy code). Each plan is reduced to the digest of its
    # dump as soon as it is timed, so every run starts from the same heap: a plan kept alive would make
    # the garbage collector's full collections in the next run (of either code) walk it too.
    for _ in range(repeats):
        wall, cpu, plan = _timed(lambda: slice_diff(diff, limits))
        walls.append(wall)
        cpus.append(cpu)
        digests.add(_digest(plan))
        del plan
        if old_slice_diff is not None:
            wall, cpu, old_plan = _timed(lambda: old_slice_diff(diff, limits))
            old_walls.append(wall)
            old_cpus.append(cpu)
            old_digests.add(_digest(old_plan))
            del old_plan
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    plan = slice_diff(diff, limits)
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = statistics.median(walls)
    per_reviewer = Counter(s.reviewer for s in plan.slices)  # type: ignore[attr-defined]
    reasons = Counter(n.reason.split(" (")[0] for n in plan.not_reviewed)  # type: ignore[attr-defined]
    baseline_result: dict[str, object]
    if old_walls:
        old_seconds = statistics.median(old_walls)
        same = len(digests) == 1 and digests == old_digests
        baseline_result = {
            "source": f"commit {BASELINE_COMMIT[:7]}, timed in this run (runs alternating)",
            "seconds": round(old_seconds, 3),
            "seconds_all_runs": [round(w, 3) for w in old_walls],
            "cpu_seconds_all_runs": [round(c, 3) for c in old_cpus],
            "megabytes_per_second": round(size_mb / old_seconds, 2),
            "megabytes_per_cpu_second": round(size_mb / statistics.median(old_cpus), 2),
            "speedup": round(old_seconds / seconds, 2),
            "cpu_speedup": round(statistics.median(old_cpus) / statistics.median(cpus), 2),
            "same_plan": same,
        }
    else:
        committed = _committed_figure()
        baseline_result = {
            "source": "the committed bench/results file (git or the baseline commit is missing)",
            "megabytes_per_second": committed,
            "speedup": round(size_mb / seconds / committed, 2) if committed else None,
            "same_plan": None,
        }
    return {
        "machine": _machine(),
        "input": {"files": files, "bytes": len(diff), "megabytes": round(size_mb, 2)},
        "limits": limits.model_dump(),
        "seconds": round(seconds, 3),
        "seconds_all_runs": [round(w, 3) for w in walls],
        "cpu_seconds_all_runs": [round(c, 3) for c in cpus],
        "megabytes_per_second": round(size_mb / seconds, 2),
        # CPU seconds too: on a shared machine the wall clock also counts other processes' turns
        "megabytes_per_cpu_second": round(size_mb / statistics.median(cpus), 2),
        "baseline": baseline_result,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "peak_traced_memory_mb": round(peak_traced / 1_000_000, 1),
        "max_rss_mb": round(rss_after / 1024, 1),
        "max_rss_before_slicing_mb": round(rss_before / 1024, 1),
        "slices": len(plan.slices),  # type: ignore[attr-defined]
        "slices_per_reviewer": dict(sorted(per_reviewer.items())),
        "split_hunk_slices": sum(s.split_hunk for s in plan.slices),  # type: ignore[attr-defined]
        "over_budget_slices": sum(s.over_budget for s in plan.slices),  # type: ignore[attr-defined]
        "not_reviewed": len(plan.not_reviewed),  # type: ignore[attr-defined]
        "not_reviewed_reasons": dict(reasons.most_common()),
        "target_megabytes_per_second": TARGET_MB_PER_SECOND,
        "within_target": size_mb / seconds >= TARGET_MB_PER_SECOND,
    }


def _digest(plan: object) -> str:
    """What the two codes' plans are compared by: their dumps, as sorted JSON, hashed."""
    dump = plan.model_dump()  # type: ignore[attr-defined]
    return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()


def _committed_figure(label: str = "cpu-2core") -> float | None:
    path = RESULTS_DIR / f"slicing-{label}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    old = data.get("baseline", {}).get("megabytes_per_second") if isinstance(data.get("baseline"), dict) else None
    return old or data.get("megabytes_per_second")


def _machine() -> dict[str, object]:
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--budget", type=int, default=3000, help="budget_tokens per slice")
    parser.add_argument("--label", default=None, help="results file suffix (default: cpu-<N>core)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true", help="do not time the code before issue #18")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    # caps wide enough that the whole diff is sliced: the bench measures slicing, not cap handling
    limits = SliceLimits(
        budget_tokens=args.budget,
        max_files=args.files,
        max_slices_per_reviewer=100_000,
        max_diff_bytes=int(args.megabytes * 2_000_000),
    )
    result = run(args.files, args.megabytes, limits, args.repeats, baseline=not args.no_baseline)
    old = result["baseline"]
    assert isinstance(old, dict)
    print(
        f"{result['input']['megabytes']} MB, {args.files} files: {result['seconds']} s median wall "
        f"(runs {result['seconds_all_runs']}, CPU {result['cpu_seconds_all_runs']}, load "
        f"{result['load_average_1min']}), {result['megabytes_per_second']} MB/s, "
        f"peak traced memory {result['peak_traced_memory_mb']} MB, "
        f"max RSS {result['max_rss_mb']} MB, {result['slices']} slices "
        f"({result['split_hunk_slices']} with split hunks), {result['not_reviewed']} not reviewed\n"
        f"{result['megabytes_per_cpu_second']} MB per CPU second\n"
        f"before: {old.get('megabytes_per_second')} MB/s, {old.get('megabytes_per_cpu_second')} MB per CPU second "
        f"({old['source']}); speedup {old['speedup']}x (CPU: {old.get('cpu_speedup')}x); "
        f"same plan: {old['same_plan']}"
    )
    if not args.no_write:
        label = args.label or f"cpu-{os.cpu_count()}core"
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"slicing-{label}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    if old["same_plan"] is False:
        print("the plan differs from the baseline's: the speed work changed the output", file=sys.stderr)
        return 2
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
