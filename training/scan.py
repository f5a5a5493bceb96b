"""`calora scan PATH`: a repository profile, and `--harvest`: candidate examples from git history.

The profile itself is computed in `reviewers.context.profile` (review context uses it too); this module
lists and reads a checkout for it. The profile (languages by lines, frameworks from manifests, test layout, lint/format configs, naming
conventions measured from the code, CI files, and the reviewers its files route to) feeds repo-aware
context into review requests and says which reviewers a repo needs. Harvesting proposes commits that
look like review fixes as *candidates* in a separate folder: a person turns a good one into a curated
example; nothing is ever written into `datasets/` by this module.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from reviewers.context.profile import RepoProfile, case_style, profile_files
from reviewers.routing import route_file
from training.examples import dump_yaml

__all__ = ["RepoProfile", "case_style", "harvest_candidates", "list_files", "scan_repository", "write_candidates"]

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", "dist", "build", ".tox", "vendor",
                       "third_party", ".mypy_cache", ".ruff_cache", ".pytest_cache", "target", ".next", ".nuxt"})
MAX_FILES = 50_000
MAX_BYTES_PER_FILE = 1_000_000

# --- files ------------------------------------------------------------------------------------------

def list_files(root: Path) -> list[str]:
    """Tracked files (git) or a walk that skips dependency and build folders; POSIX relative paths."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
        files = [f for f in out.stdout.decode("utf-8", "replace").split("\0") if f]
        if files:
            return sorted(f for f in files if (root / f).is_file())[:MAX_FILES]
    except (subprocess.CalledProcessError, FileNotFoundError):
        pass
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        found.append(rel.as_posix())
        if len(found) >= MAX_FILES:
            break
    return found


def read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_BYTES_PER_FILE:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", "replace")


def scan_repository(root: Path) -> RepoProfile:
    """Profile the repository at `root` (pure reads; nothing is written)."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    return profile_files(str(root), list_files(root), lambda rel: read_text(root / rel))


# --- harvest ----------------------------------------------------------------------------------------

FIX_MESSAGE = re.compile(
    r"\b(fix(e[sd])?|bug|review(er)? (comment|feedback|fix)|address(ed)? (review|comments|feedback)|"
    r"security|vulnerab\w*|inject\w*|xss|csrf|leak\w*|race|deadlock|crash\w*|regression|off-by-one|"
    r"null|none check|timeout|sanitiz\w*|escape|rollback|revert)\b",
    re.IGNORECASE,
)


class HarvestCandidate(BaseModel):
    """A commit that looks like a review fix: raw material for a person to curate, not an example."""

    status: str = "candidate: review, write the expected answer, then move into datasets/<reviewer>/"
    commit: str
    subject: str
    body: str
    reviewer: str = Field(description="the reviewer most of its files route to (a guess)")
    matched: str = Field(description="what in the message looked like a fix")
    defect_diff: str = Field(description="the fix reversed: the defective code as added lines, as a PR would show it")
    fix_diff: str = Field(description="the fix as committed (a source for the expected answer's suggestion)")


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True)
    return out.stdout.decode("utf-8", "replace")


def harvest_candidates(root: Path, max_commits: int = 500, max_diff_bytes: int = 12_000) -> list[HarvestCandidate]:
    """Commits whose message looks like a fix and whose small diff routes to a reviewer."""
    log = _git(root, "log", "--no-merges", f"-n{max_commits}", "--format=%H%x1f%P%x1f%s%x1f%b%x1e")
    out = []
    for entry in log.split("\x1e"):
        fields = entry.strip("\n").split("\x1f")
        if len(fields) != 4:
            continue
        sha, parents, subject, body = fields
        match = FIX_MESSAGE.search(f"{subject}\n{body}")
        if not match or not parents.strip():
            continue
        fix = _git(root, "diff", "--unified=3", f"{sha}^", sha)
        if not fix.strip() or len(fix.encode()) > max_diff_bytes:
            continue
        paths = re.findall(r"^\+\+\+ b/(.+)$", fix, re.MULTILINE) + re.findall(r"^--- a/(.+)$", fix, re.MULTILINE)
        routed = Counter(r for p in set(paths) for r in route_file(p).reviewers)
        if not routed:
            continue
        out.append(HarvestCandidate(
            commit=sha, subject=subject, body=body.strip(), reviewer=routed.most_common(1)[0][0],
            matched=match.group(0), defect_diff=_git(root, "diff", "--unified=3", sha, f"{sha}^"), fix_diff=fix,
        ))
    return out


def write_candidates(candidates: list[HarvestCandidate], out: Path) -> list[Path]:
    """One YAML per candidate under `out/<reviewer>/<sha7>.yaml`."""
    paths = []
    for c in candidates:
        path = out / c.reviewer / f"{c.commit[:7]}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(c.model_dump()), encoding="utf-8")
        paths.append(path)
    return paths
