"""The fake GitHub itself: it must catch what real GitHub would refuse, or the other tests prove nothing."""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.app.fake_github import FakeGitHub, OpenAPIValidator, hunk_map
from tests.app.github_env import app_key_pair, read_diff  # noqa: F401 - fixtures

OPENAPI = Path(__file__).resolve().parents[2].parent / "shared" / "github" / "openapi" / "api.github.com.json"


@pytest.fixture(scope="module")
def validator() -> OpenAPIValidator:
    return OpenAPIValidator(OPENAPI)


def test_operations_are_found_by_method_and_path(validator: OpenAPIValidator):
    assert validator.operation("POST", "/repos/a/b/pulls/3/reviews").operation_id == "pulls/create-review"
    assert validator.operation("PATCH", "/repos/a/b/check-runs/9").operation_id == "checks/update"
    assert validator.operation("GET", "/repos/a/b/contents/x/y/z.py").operation_id == "repos/get-content"
    assert validator.operation("POST", "/repos/a/b/issues/comments/5/reactions").operation_id == (
        "reactions/create-for-issue-comment"
    )
    assert validator.operation("POST", "/repos/a/b/pulls/3/approve-everything") is None


def test_invalid_bodies_are_reported(validator: OpenAPIValidator):
    review = validator.operation("POST", "/repos/a/b/pulls/3/reviews")
    assert validator.errors(review, {"event": "COMMENT", "comments": [{"path": "x", "body": "y", "line": 3}]}) == []
    assert validator.errors(review, {"event": "LGTM"})  # not in the enum
    assert validator.errors(review, {"comments": [{"path": "x", "line": "3"}]})  # no body, line not int
    update = validator.operation("PATCH", "/repos/a/b/check-runs/9")
    many = [{"path": "a", "start_line": 1, "end_line": 1, "annotation_level": "notice", "message": "m"}] * 51
    assert validator.errors(update, {"output": {"title": "t", "summary": "s", "annotations": many}})
    assert validator.errors(update, {"output": {"title": "t", "summary": "s" * 65536}})
    assert validator.errors(update, {"conclusion": "approved"})
    reaction = validator.operation("POST", "/repos/a/b/issues/comments/5/reactions")
    assert validator.errors(reaction, {"content": "eyes"}) == []
    assert validator.errors(reaction, {"content": "thumbsup"})


def test_hunk_map_reads_new_file_ranges(shared_dir: Path):
    hunks = hunk_map(read_diff(shared_dir, "011-"))
    assert hunks["backend/app/models.py"] == [(43, 49), (76, 84)]


def test_the_fake_records_a_violation_and_refuses_an_invalid_body(shared_dir: Path, app_key_pair):
    fake = FakeGitHub(OPENAPI, app_id=1, public_key_pem=app_key_pair[1])
    with fake.serve():
        fake.tokens["ghs_test"] = 1
        response = httpx.post(f"{fake.base_url}repos/a/b/check-runs", json={"name": "x"},
                              headers={"Authorization": "token ghs_test"})
        unknown = httpx.get(f"{fake.base_url}repos/a/b/no-such-thing",
                            headers={"Authorization": "token ghs_test"})
        anonymous = httpx.get(f"{fake.base_url}repos/a/b/pulls/1")
    assert response.status_code == 422 and unknown.status_code == 404 and anonymous.status_code == 401
    assert any("head_sha" in v for v in fake.violations)
    assert any("no such operation" in v for v in fake.violations)
