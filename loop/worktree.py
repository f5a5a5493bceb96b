"""The loop's I/O with git and the test command: a scratch worktree, never the user's working tree.

`ScratchWorktree.create` runs `git worktree add -b <branch> <temp folder> HEAD`: every patch is checked,
applied, tested and reviewed there. Between rounds the scratch worktree (and only it: `_own` checks the
path) is reset to the base commit, because each revision is the author's whole change against it. At the
end the final patch is one commit on the scratch branch. The user's working tree is written only by
`apply_to_working_tree` (`calora loop --apply`), and only when it is clean.

No author text reaches a shell: git reads patches on stdin, argument lists are never shell strings, and
`git apply` runs with its own path checks on top of ours (`loop.patches`). The test command is the user's,
run with `/bin/sh -c` only because the user wrote it as a shell command line.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from loop.patches import parse_numstat, path_problem
from loop.prompts import RepoContext
from loop.rounds import TestRun

GIT_TIMEOUT_S = 120
MAX_TEST_OUTPUT = 20_000
CONTEXT_FILE_LIMIT = 200
CONTEXT_FILE_CHARS = 20_000
# Why --recount: models miscount hunk lengths; git recounts them from the body and still checks every
# context line. Nothing looser (no --3way, no fuzz): what applies is what the author wrote.
APPLY_FLAGS = ("--recount", "--whitespace=nowarn")


class LoopSetupError(RuntimeError):
    """The repository cannot host a loop (not a git repository, no commit, git failed)."""


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1")
    return env


def git(cwd: Path, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`git -C cwd argv...` with hooks switched off; never raises on a non-zero exit (LoopSetupError when
    git hangs past GIT_TIMEOUT_S)."""
    try:
        return subprocess.run(
            ["git", "-c", "core.hooksPath=/dev/null", "-C", str(cwd), *argv],
            input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, env=_git_env(), check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoopSetupError(f"git {argv[0]} in {cwd} took over {GIT_TIMEOUT_S} s") from exc


def environment_for_tests() -> dict[str, str]:
    """The user's environment for the test command, without calora's own secrets: the tests run the
    author's code, which must not read the author's API key or the App's secrets."""
    secret = ("KEY", "SECRET", "TOKEN", "PASSWORD")
    return {k: v for k, v in os.environ.items()
            if not (k.upper().startswith("CALORA_") and any(word in k.upper() for word in secret))}


def _out(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode("utf-8", errors="replace").strip()


def repo_root(path: Path) -> Path:
    """The top of the git repository holding `path`; LoopSetupError otherwise."""
    if not path.is_dir():
        raise LoopSetupError(f"{path} is not a folder")
    top = git(path, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise LoopSetupError(f"{path} is not inside a git repository: {_out(top)}")
    return Path(top.stdout.decode().strip()).resolve()


class ScratchWorktree:
    """A `git worktree` of the user's repository on a new branch from HEAD, in a temporary folder."""

    def __init__(self, repo: Path, path: Path, branch: str, base: str) -> None:
        self.repo, self.path, self.branch, self.base = repo, path, branch, base

    @classmethod
    def create(cls, repo: Path, branch: str | None = None) -> ScratchWorktree:
        root = repo_root(repo)
        head = git(root, "rev-parse", "--verify", "HEAD^{commit}")
        if head.returncode != 0:
            raise LoopSetupError(f"{root} has no commit yet; commit something first ({_out(head)})")
        base = head.stdout.decode().strip()
        branch = branch or f"calora/loop-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        folder = Path(tempfile.mkdtemp(prefix="calora-loop-")).resolve()
        path = folder / "worktree"
        added = git(root, "worktree", "add", "--quiet", "-b", branch, str(path), base)
        if added.returncode != 0:
            raise LoopSetupError(f"git worktree add failed: {_out(added)}")
        return cls(root, path, branch, base)

    def _own(self) -> None:
        """Refuse to reset anything but this scratch worktree."""
        if self.path == self.repo or self.repo in self.path.parents or not self.path.name == "worktree":
            raise LoopSetupError(f"refusing to reset {self.path}: it is not the loop's scratch worktree")

    def reset(self) -> None:
        """Back to the base commit: each revision is the whole change against it."""
        self._own()
        for argv in (("reset", "--quiet", "--hard", self.base), ("clean", "-fdq")):
            done = git(self.path, *argv)
            if done.returncode != 0:
                raise LoopSetupError(f"could not reset the scratch worktree {self.path}: {_out(done)}")

    def path_problems(self, patch: str) -> list[str]:
        """Git's own reading of the patch's paths, each checked like `loop.patches.path_problem`, plus
        symbolic links on the way that lead out of the repository."""
        listed = git(self.path, "apply", "--numstat", "-z", *APPLY_FLAGS, "-", stdin=patch.encode())
        if listed.returncode != 0:
            return []  # git cannot read it: `check` reports git's error
        problems = []
        root = self.path.resolve()
        for rel in parse_numstat(listed.stdout):
            why = path_problem(rel)
            if why:
                problems.append(f"refused path: {why}")
                continue
            here = self.path
            for part in rel.split("/"):
                here = here / part
                if here.is_symlink() and not here.resolve().is_relative_to(root):
                    problems.append(f"refused path: {rel!r} goes through the symbolic link {part!r}, which "
                                    "leads out of the repository")
                    break
        return problems

    def check(self, patch: str) -> tuple[bool, str]:
        """`git apply --check`: whether the patch applies to the base, and what git said."""
        done = git(self.path, "apply", "--check", "--index", *APPLY_FLAGS, "-", stdin=patch.encode())
        return done.returncode == 0, _out(done)

    def apply(self, patch: str) -> str:
        """Apply to the scratch worktree and its index; the change as git now sees it (`git diff --cached`)."""
        done = git(self.path, "apply", "--index", *APPLY_FLAGS, "-", stdin=patch.encode())
        if done.returncode != 0:
            raise LoopSetupError(f"git apply failed after --check passed: {_out(done)}")
        diff = git(self.path, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames", self.base)
        return diff.stdout.decode("utf-8", errors="replace")

    def contents(self, paths: list[str]) -> dict[str, str]:
        """Text of the changed files at their new state (the analyzers judge whole files)."""
        out: dict[str, str] = {}
        for rel in paths:
            file = self.path / rel
            if file.is_file() and not file.is_symlink():
                data = file.read_bytes()
                if b"\0" not in data[:8192]:
                    out[rel] = data.decode("utf-8", errors="replace")
        return out

    def context(self, task: str, budget_chars: int) -> RepoContext:
        """The tracked files and as much of their text as fits: files the task names first, then the smaller."""
        listed = git(self.path, "ls-files", "-z")
        files = [f for f in listed.stdout.decode("utf-8", errors="replace").split("\0") if f]
        sized = []
        for rel in files:
            file = self.path / rel
            if file.is_file() and not file.is_symlink():
                sized.append((rel not in task and Path(rel).name not in task, file.stat().st_size, rel))
        contents: dict[str, str] = {}
        left_out: list[str] = []
        used = 0
        for _, size, rel in sorted(sized):
            data = (self.path / rel).read_bytes()
            if b"\0" in data[:8192]:
                continue
            if size > CONTEXT_FILE_CHARS or used + size > budget_chars:
                left_out.append(rel)
                continue
            contents[rel] = data.decode("utf-8", errors="replace")
            used += size
        return RepoContext(files=files[:CONTEXT_FILE_LIMIT], more_files=max(0, len(files) - CONTEXT_FILE_LIMIT),
                           contents=dict(sorted(contents.items())), left_out=left_out)

    def commit(self, patch: str, message: str) -> bool:
        """The final patch as one commit on the scratch branch (never the user's branch)."""
        self.reset()
        if not self.check(patch)[0]:
            return False
        self.apply(patch)
        done = git(self.path, "-c", "user.name=calora loop", "-c", "user.email=calora-loop@localhost",
                   "commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message)
        return done.returncode == 0


def run_tests(command: str, cwd: Path, timeout_s: float) -> TestRun:
    """The user's test command in the scratch worktree, killed (with its children) at the time limit."""
    started = time.perf_counter()
    try:
        process = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=environment_for_tests(),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    except OSError as exc:
        return TestRun(command=command, exit_code=None, output=f"could not start: {exc}")
    try:
        output, _ = process.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        timed_out = True
    text = output.decode("utf-8", errors="replace")
    if len(text) > MAX_TEST_OUTPUT:
        text = "… (earlier output cut)\n" + text[-MAX_TEST_OUTPUT:]
    if timed_out:
        text += f"\n(killed after {timeout_s:g} s: --test-timeout)"
    return TestRun(command=command, exit_code=None if timed_out else process.returncode, timed_out=timed_out,
                   output=text, seconds=time.perf_counter() - started)


def working_tree_changes(repo: Path) -> list[str]:
    """Tracked files with changes in the user's working tree or index (untracked files are not changes)."""
    done = git(repo, "status", "--porcelain", "--untracked-files=no")
    return [line[3:] for line in done.stdout.decode("utf-8", errors="replace").splitlines() if line.strip()]


def apply_to_working_tree(repo: Path, patch: str, base: str) -> tuple[bool, str]:
    """`--apply`: the final patch into the user's working tree, only when that tree is clean."""
    changed = working_tree_changes(repo)
    if changed:
        shown = ", ".join(changed[:5]) + (", …" if len(changed) > 5 else "")
        return False, (f"not applied: your working tree has uncommitted changes ({shown}); commit or stash "
                       "them and apply the branch's commit yourself")
    head = git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    moved = "" if head == base else f" (HEAD moved from {base[:10]} to {head[:10]} since the loop began)"
    check = git(repo, "apply", "--check", *APPLY_FLAGS, "-", stdin=patch.encode())
    if check.returncode != 0:
        return False, f"not applied: the patch does not apply to your working tree{moved}: {_out(check)}"
    done = git(repo, "apply", *APPLY_FLAGS, "-", stdin=patch.encode())
    if done.returncode != 0:
        return False, f"not applied: git apply failed: {_out(done)}"
    touched = re.findall(r"^\+\+\+ b/(.+)$", patch, re.MULTILINE)
    return True, f"applied to your working tree{moved}, not committed: {', '.join(touched[:10])}"
