"""`calora checks`: which analyzers are here, their versions, and the one command that installs each missing one.

`calora checks install [eslint|checkov|semgrep|all]` installs the tools that are not our dependencies into the
tools cache (`CALORA_TOOLS_DIR`, default ~/.cache/calora/tools): checkov and semgrep each in its own virtualenv
(their pinned dependencies would clash with ours; semgrep's engine is a 270 MB binary not every user wants),
ESLint and its plugins through npm (Node.js is a system dependency; without it oxlint, a wheel, covers
JavaScript and TypeScript). Versions are pinned here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

CHECKOV_VERSION = "3.3.30"
SEMGREP_VERSION = "1.187.0"
ESLINT_PACKAGES = (
    "eslint@9.39.5", "eslint-plugin-react@7.37.5", "eslint-plugin-react-hooks@7.1.1",
    "eslint-plugin-vue@10.12.1", "vue-eslint-parser@10.4.2", "typescript-eslint@8.74.0", "typescript@5.9.3",
)
INSTALLABLE = ("eslint", "checkov", "semgrep")
VENV_TOOLS = {"checkov": f"checkov=={CHECKOV_VERSION}", "semgrep": f"semgrep=={SEMGREP_VERSION}"}
"""Tools whose pinned dependencies would clash with ours: each gets its own virtualenv."""


def register(subparsers: argparse._SubParsersAction) -> None:
    checks = subparsers.add_parser("checks", help="the analyzers that give the reviewers evidence")
    checks.add_argument("--format", choices=["text", "json"], default="text")
    checks.set_defaults(handler=run_checks_command)
    sub = checks.add_subparsers(dest="checks_command", metavar="COMMAND")
    install = sub.add_parser("install", help="install ESLint (npm), checkov and semgrep (own venvs) into the tools cache")
    install.add_argument("names", nargs="*", metavar="NAME", help="eslint, checkov, semgrep or all (default: all)")
    install.set_defaults(handler=run_install_command)


def run_checks_command(args: argparse.Namespace) -> int:
    from reviewers.checks.sandbox import network_isolation, tool_version
    from reviewers.checks.tools import TOOLS

    rows = []
    for tool in TOOLS:
        version = tool_version(tool)
        rows.append({"tool": tool.name, "version": version, "installed": version is not None,
                     "install": None if version is not None else tool.install})
    isolated = bool(network_isolation())
    if args.format == "json":
        print(json.dumps({"tools": rows, "network_isolation": isolated}, indent=2))
    else:
        for row in rows:
            state = row["version"] or f"missing: {row['install']}"
            print(f"{row['tool']:<15} {state}")
        print("network isolation: " + ("unshare -rn" if isolated else
                                       "not available here (offline flags and a dead proxy only)"))
    return 0


def run_install_command(args: argparse.Namespace) -> int:
    from reviewers.checks.tools import sync_eslint_config, sync_semgrep_config, tools_cache

    unknown = sorted(set(args.names) - {*INSTALLABLE, "all"})
    if unknown:
        print(f"calora: cannot install {', '.join(unknown)}; choose from {', '.join(INSTALLABLE)} or all",
              file=sys.stderr)
        return 3
    names = INSTALLABLE if not args.names or "all" in args.names else tuple(dict.fromkeys(args.names))
    cache = tools_cache()
    cache.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in names:
        print(f"calora: installing {name} into {cache / name}", file=sys.stderr, flush=True)
        if name in VENV_TOOLS:
            target = cache / name
            steps = [[sys.executable, "-m", "venv", str(target)],
                     [str(target / "bin" / "pip"), "install", "--quiet", VENV_TOOLS[name]]]
        else:
            npm = shutil.which("npm")
            if npm is None:
                print("calora: npm not found: install Node.js (e.g. apt-get install nodejs npm); oxlint keeps "
                      "covering JavaScript and TypeScript meanwhile", file=sys.stderr)
                failed += 1
                continue
            target = cache / "eslint"
            steps = [[npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", "--ignore-scripts",
                      "--loglevel", "error", *ESLINT_PACKAGES]]
        # The tool's config goes next to it now, so a read-only tools cache (an image) needs no write later.
        sync = {"eslint": sync_eslint_config, "semgrep": sync_semgrep_config}.get(name)
        if sync is not None:
            sync()
        for step in steps:
            done = subprocess.run(step, check=False)
            if done.returncode != 0:
                print(f"calora: {name}: `{' '.join(step)}` failed with exit code {done.returncode}",
                      file=sys.stderr)
                failed += 1
                break
    return 3 if failed else 0
