"""A fake GitHub REST API for the app's tests: a small FastAPI app served by uvicorn on loopback.

It serves pull requests built from real diffs, checks the App's JWT and the installation tokens it
issued, and validates EVERY request body the bot sends against that operation's request-body schema
in GitHub's OpenAPI description (../shared/github/openapi/api.github.com.json). A body that does not
validate is recorded in `violations` and answered 422; tests assert `violations == []`.

Like GitHub, it refuses (422) a review comment whose line is not inside one hunk of the pull request's
diff; its hunk map is parsed here from the `@@` headers, independently of the app's own code.
Faults (502, 403 with Retry-After, 422 on one comment ...) are scripted with `add_fault`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI_URI = "urn:github-openapi"


# -----------------------------------------------------------------------------------------------
# OpenAPI: operation lookup and request-body validation.


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    pattern: re.Pattern[str]
    params: int
    has_body_schema: bool


@lru_cache(maxsize=2)
def load_openapi(path: str) -> tuple[dict[str, Any], tuple[Operation, ...], Registry]:
    spec = json.loads(Path(path).read_text())
    operations = []
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            regex = ""
            for part in re.split(r"(\{[^}]+\})", template):
                if part.startswith("{"):
                    regex += "(.*)" if part == "{path}" else "([^/]+)"  # contents/ is the root folder
                else:
                    regex += re.escape(part)
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            operations.append(Operation(
                method=method.upper(), template=template, operation_id=op["operationId"],
                pattern=re.compile(regex + r"\Z"), params=template.count("{"),
                has_body_schema=body is not None and "schema" in body,
            ))
    operations.sort(key=lambda o: o.params)  # literal segments win over parameters
    registry = Registry().with_resource(OPENAPI_URI, Resource.from_contents(spec, default_specification=DRAFT4))
    return spec, tuple(operations), registry


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class OpenAPIValidator:
    """Finds the operation for (method, path) and validates a JSON body against its request schema."""

    def __init__(self, path: Path):
        self.spec, self.operations, self.registry = load_openapi(str(path))

    def operation(self, method: str, path: str) -> Operation | None:
        return next((o for o in self.operations if o.method == method and o.pattern.match(path)), None)

    def errors(self, op: Operation, body: Any) -> list[str]:
        if not op.has_body_schema:
            return [] if body in (None, {}) else [f"{op.operation_id} takes no JSON body"]
        pointer = "/".join(
            _pointer_escape(p)
            for p in ("paths", op.template, op.method.lower(), "requestBody", "content", "application/json", "schema")
        )
        validator = jsonschema.Draft4Validator({"$ref": f"{OPENAPI_URI}#/{pointer}"}, registry=self.registry)
        return [
            f"{op.operation_id}: {'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message[:300]}"
            for e in validator.iter_errors(body)
        ]


# -----------------------------------------------------------------------------------------------
# State: repositories, pull requests, check runs, reviews.


CONTENTS_TEXT_LIMIT = 1024 * 1024  # GitHub's contents API sends no text for larger files


def blob_sha(data: bytes) -> str:
    """Git's blob id of `data`: what GitHub reports as a file's `sha`, the same in every commit."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hunk_map(diff_text: str) -> dict[str, list[tuple[int, int]]]:
    """New-file line ranges of every hunk, per new path, read from the diff headers."""
    out: dict[str, list[tuple[int, int]]] = {}
    path: str | None = None
    for line in diff_text.splitlines():
        if line.startswith("diff --git "):
            path = None
        elif line.startswith("+++ "):
            target = line[4:].split("\t")[0]
            path = None if target == "/dev/null" else target.removeprefix("b/")
            if path is not None:
                out.setdefault(path, [])
        elif line.startswith("@@ ") and path is not None:
            match = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", line)
            if match:
                start, length = int(match.group(1)), int(match.group(2) or 1)
                if length:
                    out[path].append((start, start + length - 1))
    return out


def file_entries(diff_text: str) -> list[dict[str, Any]]:
    """The `pulls/list-files` rows of a diff, with added files' full contents kept aside."""
    entries: list[dict[str, Any]] = []
    for block in re.split(r"(?m)^(?=diff --git )", diff_text):
        if not block.startswith("diff --git "):
            continue
        head = re.match(r"diff --git a/(.*) b/(.*)", block.splitlines()[0])
        assert head, block[:80]
        old, new = head.group(1), head.group(2)
        status = "modified"
        if "\nnew file mode" in block:
            status = "added"
        elif "\ndeleted file mode" in block:
            status = "removed"
        elif "\nrename from " in block:
            status = "renamed"
        lines = block.splitlines()
        adds = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
        dels = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
        content = None
        if status == "added":
            body = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
            content = "\n".join(body) + ("\n" if body else "")
        first_hunk = next((i for i, ln in enumerate(lines) if ln.startswith("@@")), None)
        patch = "\n".join(lines[first_hunk:]) if first_hunk is not None else None
        entries.append({
            "filename": new, "status": status, "patch": patch, "additions": adds, "deletions": dels, "changes": adds + dels,
            "previous_filename": old if status == "renamed" else None, "content": content,
        })
    return entries


@dataclass
class FakePull:
    number: int
    title: str
    body: str
    head_sha: str
    base_sha: str
    base_ref: str
    head_ref: str
    diff: str
    draft: bool = False
    state: str = "open"
    author: str = "octocat"


@dataclass
class FakeRepo:
    owner: str
    name: str
    files: dict[tuple[str, str], str | bytes] = field(default_factory=dict)  # (ref, path) -> text or bytes
    pulls: dict[int, FakePull] = field(default_factory=dict)
    compares: dict[tuple[str, str], tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int
    when: Callable[[Any], bool] | None = None
    accept: str | None = None
    after: bool = False  # act on the request first, then answer with the fault (a lost answer)


@dataclass
class Recorded:
    method: str
    path: str
    operation: str | None
    body: Any
    status: int = 0
    accept: str = ""  # the Accept header: which form of a resource was asked for (raw, diff, JSON)


class FakeGitHub:
    """The fake API's state and its FastAPI app. Start it with `serve()` (a context manager)."""

    def __init__(
        self,
        openapi_path: Path,
        *,
        app_id: int,
        public_key_pem: str,
        bot_login: str = "calora-review[bot]",
        token_lifetime: timedelta = timedelta(hours=1),
    ):
        self.validator = OpenAPIValidator(openapi_path)
        self.app_id = app_id
        self.public_key_pem = public_key_pem
        self.bot_login = bot_login
        self.token_lifetime = token_lifetime
        self.repos: dict[str, FakeRepo] = {}
        self.tokens: dict[str, int] = {}  # token -> installation id
        self.tokens_issued = 0
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.check_run_updates: list[tuple[int, dict[str, Any]]] = []
        self.reviews: list[dict[str, Any]] = []
        self.review_comments: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.manifest_app: dict[str, Any] | None = None  # {"code", "slug", "name", "html_url", "pem"} to hand out
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.app = self._build_app()
        self.base_url = ""

    # -- scripting

    def repo(self, owner: str, name: str) -> FakeRepo:
        return self.repos.setdefault(f"{owner}/{name}", FakeRepo(owner, name))

    def add_pull(
        self, owner: str, name: str, number: int, diff: str, *, head_sha: str, base_sha: str = "b" * 40,
        title: str = "A change", body: str = "", draft: bool = False, base_ref: str = "main",
        config: str | None = None,
    ) -> FakePull:
        repo = self.repo(owner, name)
        pull = FakePull(number, title, body, head_sha, base_sha, base_ref, f"feature-{number}", diff, draft)
        repo.pulls[number] = pull
        if config is not None:
            repo.files[(base_ref, ".calora.yml")] = config
        self._index_contents(repo, pull)
        return pull

    def push(
        self, owner: str, name: str, number: int, *, new_diff: str, new_head_sha: str, push_diff: str,
        message: str = "Follow-up commit",
    ) -> None:
        """A new commit on the pull request: the PR diff becomes `new_diff`; compare(old, new) = `push_diff`."""
        repo = self.repo(owner, name)
        pull = repo.pulls[number]
        repo.compares[(pull.head_sha, new_head_sha)] = (push_diff, [(new_head_sha, message)])
        pull.head_sha, pull.diff = new_head_sha, new_diff
        self._index_contents(repo, pull)

    def _index_contents(self, repo: FakeRepo, pull: FakePull) -> None:
        for entry in file_entries(pull.diff):
            if entry["content"] is not None:
                repo.files[(pull.head_sha, entry["filename"])] = entry["content"]

    def add_fault(
        self, method: str, path_regex: str, status: int, *, headers: dict[str, str] | None = None,
        body: Any = None, times: int = 1, when: Callable[[Any], bool] | None = None, accept: str | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with `status` (`accept`: only when the Accept header
        has it; `after`: carry the request out first, as when GitHub acts and then the answer is lost)."""
        self.faults.append(Fault(method, re.compile(path_regex), status, headers or {},
                                 body if body is not None else {"message": "fault"}, times, when, accept, after))

    def calls(self, operation: str) -> list[Recorded]:
        return [r for r in self.requests if r.operation == operation]

    # -- serving

    def serve(self) -> _Serving:
        return _Serving(self)

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def anything(path: str, request: Request) -> Response:
            raw = await request.body()
            return self._handle(request, "/" + path, raw)

        return app

    def _handle(self, request: Request, path: str, raw: bytes) -> Response:
        method = request.method
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.violations.append(f"{method} {path}: body is not JSON")
                return JSONResponse({"message": "Problems parsing JSON"}, status_code=400)
        op = self.validator.operation(method, path)
        record = Recorded(method, path, op.operation_id if op else None, body,
                          accept=request.headers.get("accept", ""))
        with self._lock:
            self.requests.append(record)
        if op is None:
            self.violations.append(f"{method} {path}: no such operation in GitHub's REST API")
            return self._answer(record, JSONResponse({"message": "Not Found"}, status_code=404))
        if method in ("POST", "PATCH", "PUT"):
            errors = self.validator.errors(op, body if body is not None else {})
            if errors:
                self.violations.extend(errors)
                return self._answer(record, JSONResponse(
                    {"message": "Invalid request.", "errors": errors}, status_code=422
                ))
        auth = request.headers.get("authorization", "")
        if op.operation_id == "apps/create-installation-access-token":
            return self._answer(record, self._issue_token(auth, path))
        if op.operation_id == "apps/create-from-manifest":  # no credentials: the one-time code is the proof
            return self._answer(record, self._convert_manifest(path.split("/")[2]))
        if not auth.startswith("token ") or auth[6:] not in self.tokens:
            return self._answer(record, JSONResponse({"message": "Bad credentials"}, status_code=401))
        params = op.pattern.match(path).groups()  # type: ignore[union-attr]
        handler = getattr(self, "_op_" + re.sub(r"[^a-z]", "_", op.operation_id), None)
        if handler is None:
            self.violations.append(f"{op.operation_id}: the fake does not implement it")
            return self._answer(record, JSONResponse({"message": "Not implemented"}, status_code=501))
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path.search(path) and (
                fault.when is None or fault.when(body)
            ) and (fault.accept is None or fault.accept in request.headers.get("accept", "")):
                fault.times -= 1
                if fault.after:
                    handler(request, body, *params)
                if isinstance(fault.body, str):
                    resp: Response = PlainTextResponse(fault.body, fault.status, headers=fault.headers)
                else:
                    resp = JSONResponse(fault.body, fault.status, headers=fault.headers)
                return self._answer(record, resp)
        return self._answer(record, handler(request, body, *params))

    @staticmethod
    def _answer(record: Recorded, response: Response) -> Response:
        record.status = response.status_code
        return response

    def _issue_token(self, auth: str, path: str) -> Response:
        if not auth.startswith("Bearer "):
            return JSONResponse({"message": "A JSON web token could not be decoded"}, status_code=401)
        try:
            claims = jwt.decode(auth[7:], self.public_key_pem, algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            return JSONResponse({"message": f"JWT rejected: {exc}"}, status_code=401)
        if str(claims.get("iss")) != str(self.app_id):
            return JSONResponse({"message": "JWT issuer is not this app"}, status_code=401)
        installation = int(path.split("/")[3])
        token = "ghs_" + secrets.token_hex(18)
        self.tokens[token] = installation
        self.tokens_issued += 1
        expires = (datetime.now(UTC) + self.token_lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        return JSONResponse({"token": token, "expires_at": expires, "permissions": {}}, status_code=201)

    def _convert_manifest(self, code: str) -> Response:
        if self.manifest_app is None or code != self.manifest_app.get("code"):
            return JSONResponse({"message": "Not Found"}, status_code=404)
        app, self.manifest_app = self.manifest_app, None  # a code works once
        body = {k: v for k, v in app.items() if k != "code"}
        return JSONResponse({"id": self.app_id, "webhook_secret": "whsec-" + secrets.token_hex(8),
                             "client_id": "Iv1.fake", "client_secret": "fake-client-secret", **body},
                            status_code=201)

    # -- operations (named after GitHub's operationId)

    def _pull(self, owner: str, name: str, number: str) -> FakePull | None:
        repo = self.repos.get(f"{owner}/{name}")
        return repo.pulls.get(int(number)) if repo else None

    @staticmethod
    def _wants_diff(request: Request) -> bool:
        return "diff" in request.headers.get("accept", "")

    @staticmethod
    def _page(request: Request, items: list[Any]) -> list[Any]:
        per_page = int(request.query_params.get("per_page", 30))
        page = int(request.query_params.get("page", 1))
        return items[(page - 1) * per_page : page * per_page]

    def _op_pulls_get(self, request: Request, body: Any, owner: str, name: str, number: str) -> Response:
        pull = self._pull(owner, name, number)
        if pull is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        if self._wants_diff(request):
            return PlainTextResponse(pull.diff, media_type="application/vnd.github.diff")
        return JSONResponse({
            "number": pull.number, "title": pull.title, "body": pull.body, "state": pull.state,
            "draft": pull.draft, "user": {"login": pull.author},
            "head": {"sha": pull.head_sha, "ref": pull.head_ref},
            "base": {"sha": pull.base_sha, "ref": pull.base_ref},
        })

    def _op_pulls_list_files(self, request: Request, body: Any, owner: str, name: str, number: str) -> Response:
        pull = self._pull(owner, name, number)
        if pull is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        rows = [{k: v for k, v in e.items() if k != "content"} for e in file_entries(pull.diff)]
        return JSONResponse(self._page(request, rows))

    def _op_pulls_list_review_comments(
        self, request: Request, body: Any, owner: str, name: str, number: str
    ) -> Response:
        rows = [c for c in self.review_comments if c["_pr"] == (owner, name, int(number))]
        return JSONResponse(self._page(request, [{k: v for k, v in c.items() if k != "_pr"} for c in rows]))

    def _op_pulls_list_reviews(self, request: Request, body: Any, owner: str, name: str, number: str) -> Response:
        rows = [{"id": r["id"], "body": r["body"], "state": r["event"], "commit_id": r["commit_id"],
                 "user": {"login": self.bot_login}}
                for r in self.reviews if r["pr"] == (owner, name, int(number))]
        return JSONResponse(self._page(request, rows))

    def _op_pulls_create_review(self, request: Request, body: Any, owner: str, name: str, number: str) -> Response:
        pull = self._pull(owner, name, number)
        if pull is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        if body.get("event") == "APPROVE":
            self.violations.append("the bot tried to APPROVE a pull request")
        if body.get("commit_id") not in (None, pull.head_sha):
            return JSONResponse({"message": "Unprocessable Entity",
                                 "errors": ["commit_id is not the pull request's head"]}, status_code=422)
        hunks = hunk_map(pull.diff)
        for comment in body.get("comments") or []:
            ranges = hunks.get(comment["path"])
            if ranges is None:
                return JSONResponse({"message": "Unprocessable Entity",
                                     "errors": ["Path could not be resolved"]}, status_code=422)
            line, start = comment.get("line"), comment.get("start_line", comment.get("line"))
            if comment.get("side", "RIGHT") != "RIGHT" or line is None or not any(
                a <= start and line <= b for a, b in ranges
            ):
                return JSONResponse({"message": "Unprocessable Entity",
                                     "errors": ["Line could not be resolved"]}, status_code=422)
        review_id = next(self._ids)
        review = {"id": review_id, "pr": (owner, name, int(number)), "event": body.get("event"),
                  "body": body.get("body", ""), "commit_id": body.get("commit_id"),
                  "comments": body.get("comments") or []}
        self.reviews.append(review)
        for comment in review["comments"]:
            self.review_comments.append({
                "_pr": (owner, name, int(number)), "id": next(self._ids), "pull_request_review_id": review_id,
                "path": comment["path"], "line": comment["line"], "start_line": comment.get("start_line"),
                "side": comment.get("side", "RIGHT"), "body": comment["body"], "commit_id": pull.head_sha,
                "user": {"login": self.bot_login, "type": "Bot"},
            })
        state = {"COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(body.get("event"), "PENDING")
        return JSONResponse({"id": review_id, "state": state, "body": review["body"],
                             "commit_id": review["commit_id"], "user": {"login": self.bot_login}})

    def _op_repos_get_content(self, request: Request, body: Any, owner: str, name: str, path: str) -> Response:
        """A file (raw, or JSON with its blob sha and base64 text) or a folder's entries, like GitHub."""
        repo = self.repos.get(f"{owner}/{name}")
        ref = request.query_params.get("ref", "main")
        files = {p: t for (r, p), t in repo.files.items() if r == ref} if repo else {}
        path = path.strip("/")
        found = files.get(path)
        if found is not None:
            data = found.encode() if isinstance(found, str) else found
            if "raw" in request.headers.get("accept", ""):
                return Response(data, media_type="application/vnd.github.raw")
            return JSONResponse(self._content_entry(owner, name, ref, path, "file", data, with_content=True))
        prefix = f"{path}/" if path else ""
        children: dict[str, tuple[str, bytes]] = {}
        for file_path, text in files.items():
            if not file_path.startswith(prefix):
                continue
            head, sep, _rest = file_path[len(prefix):].partition("/")
            data = text.encode() if isinstance(text, str) else text
            children.setdefault(prefix + head, ("dir", b"") if sep else ("file", data))
        if not children:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return JSONResponse([self._content_entry(owner, name, ref, child, kind, data, with_content=False)
                             for child, (kind, data) in sorted(children.items())])

    def _content_entry(
        self, owner: str, name: str, ref: str, path: str, kind: str, data: bytes, *, with_content: bool
    ) -> dict[str, Any]:
        """The fields GitHub's `content-file` / `content-directory` schemas require. Like GitHub, a file
        over 1 MB comes without its text (`encoding: none`)."""
        url = f"{self.base_url}repos/{owner}/{name}/contents/{path}?ref={ref}"
        sha = blob_sha(data) if kind == "file" else hashlib.sha1(path.encode()).hexdigest()
        entry: dict[str, Any] = {
            "type": kind, "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha,
            "size": len(data) if kind == "file" else 0, "url": url, "git_url": None, "html_url": None,
            "download_url": None, "_links": {"git": None, "html": None, "self": url},
        }
        if with_content:
            small = len(data) <= CONTENTS_TEXT_LIMIT
            entry["encoding"] = "base64" if small else "none"
            entry["content"] = base64.b64encode(data).decode() if small else ""
        return entry

    def _op_repos_compare_commits_with_basehead(self, request: Request, body: Any, owner: str, name: str, basehead: str) -> Response:
        repo = self.repos.get(f"{owner}/{name}")
        base, _, head = basehead.partition("...")
        found = repo.compares.get((base, head)) if repo else None
        if found is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        diff, commits = found
        if self._wants_diff(request):
            return PlainTextResponse(diff, media_type="application/vnd.github.diff")
        return JSONResponse({
            "status": "ahead", "ahead_by": len(commits), "behind_by": 0, "total_commits": len(commits),
            "commits": [{"sha": sha, "commit": {"message": msg}} for sha, msg in commits],
        })

    def _op_checks_create(self, request: Request, body: Any, owner: str, name: str) -> Response:
        run_id = next(self._ids)
        run = {"id": run_id, "repo": f"{owner}/{name}", "app": {"id": self.app_id}, "conclusion": None,
               "status": "queued", "annotations": [], "output": {}, "history": [], **body}
        run["history"].append(body.get("status", "queued"))
        self.check_runs[run_id] = run
        return JSONResponse({k: v for k, v in run.items() if k != "history"}, status_code=201)

    def _op_checks_update(self, request: Request, body: Any, owner: str, name: str, run_id: str) -> Response:
        run = self.check_runs.get(int(run_id))
        if run is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        self.check_run_updates.append((int(run_id), body))
        output = dict(body.get("output") or {})
        run["annotations"].extend(output.pop("annotations", []))
        run["output"].update(output)
        for key in ("status", "conclusion", "started_at", "completed_at", "external_id"):
            if key in body:
                run[key] = body[key]
        if "conclusion" in body:
            run["status"] = "completed"
        run["history"].append(run["status"])
        return JSONResponse({k: v for k, v in run.items() if k != "history"})

    def _op_checks_list_for_ref(self, request: Request, body: Any, owner: str, name: str, ref: str) -> Response:
        wanted = request.query_params.get("check_name")
        runs = [
            {k: v for k, v in r.items() if k not in ("history", "annotations")}
            for r in self.check_runs.values()
            if r["repo"] == f"{owner}/{name}" and r["head_sha"] == ref and (not wanted or r["name"] == wanted)
        ]
        runs.sort(key=lambda r: -r["id"])
        return JSONResponse({"total_count": len(runs), "check_runs": runs})

    def _op_reactions_create_for_issue_comment(
        self, request: Request, body: Any, owner: str, name: str, comment_id: str
    ) -> Response:
        reaction = {"id": next(self._ids), "content": body["content"], "comment_id": int(comment_id)}
        self.reactions.append(reaction)
        return JSONResponse(reaction, status_code=201)


class _Serving:
    """Runs the fake with uvicorn on 127.0.0.1 (a free port) in a thread, for a `with` block."""

    def __init__(self, fake: FakeGitHub):
        self.fake = fake
        self.server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fake GitHub server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.fake.base_url = f"http://127.0.0.1:{port}/"
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
