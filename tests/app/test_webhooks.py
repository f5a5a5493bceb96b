"""The sans-I/O webhook core against GitHub's real example payloads."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.webhooks import (
    Delivery,
    Ignore,
    InstallationChange,
    MalformedDeliveryError,
    Pong,
    QueueReviews,
    SignatureMismatchError,
    SignatureMissingError,
    TriggerPolicy,
    UnknownReviewerError,
    decide,
    parse_delivery,
    parse_review_command,
    sign,
    verify_signature,
)
from reviewers.routing import REVIEWER_NAMES
from tests.app.receiver_support import (
    TEST_SECRET,
    WEBHOOKS_DIR,
    event_of,
    load_payload,
    payload_files,
    pr_comment_payload,
    pull_request_payload,
)

POLICY = TriggerPolicy(bot_login="calora[bot]")

# Real examples that ask for a review; every other pull_request / issue_comment / check_* example is ignored.
QUEUED_EXAMPLES = {
    "pull_request/opened.payload.json",
    "pull_request/opened.with-null-body.json",
    "pull_request/opened.with-organization.payload.json",
    "pull_request/reopened.payload.json",
    "pull_request/reopened.with-organization.payload.json",
    "pull_request/synchronize.payload.json",
    "pull_request/ready_for_review.with-installation.payload.json",
    "check_suite/rerequested.payload.json",
    "check_suite/rerequested.with-organization.payload.json",
}


def delivery(event: str, payload: dict, delivery_id: str = "d-1") -> Delivery:
    return Delivery(delivery_id=delivery_id, event=event, payload=payload)


def expected_kind(relative: str) -> str:
    event = relative.split("/")[0]
    if relative in QUEUED_EXAMPLES:
        return "queue"
    if event == "ping":
        return "pong"
    if event in {"installation", "installation_repositories"}:
        return "installation"
    return "ignore"


# --- signatures -------------------------------------------------------------------------------------------

def test_signature_of_the_body_is_accepted() -> None:
    body = (WEBHOOKS_DIR / "ping/payload.json").read_bytes()
    verify_signature(body, sign(body, TEST_SECRET), TEST_SECRET)


def test_missing_signature_is_refused() -> None:
    with pytest.raises(SignatureMissingError, match="missing"):
        verify_signature(b"{}", None, TEST_SECRET)
    with pytest.raises(SignatureMissingError):
        verify_signature(b"{}", "", TEST_SECRET)


@pytest.mark.parametrize("signature", [
    sign(b"{}", b"another secret"),
    sign(b"{} ", TEST_SECRET),
    "sha1=" + sign(b"{}", TEST_SECRET).removeprefix("sha256="),
    sign(b"{}", TEST_SECRET).upper(),
    "sha256=",
])
def test_wrong_signature_is_refused(signature: str) -> None:
    with pytest.raises(SignatureMismatchError):
        verify_signature(b"{}", signature, TEST_SECRET)


def test_an_empty_secret_refuses_everything() -> None:
    with pytest.raises(ValueError, match="empty"):
        verify_signature(b"{}", sign(b"{}", b""), b"")


@given(body=st.binary(max_size=512), secret=st.binary(min_size=1, max_size=64), flip=st.integers(min_value=0))
def test_any_changed_byte_breaks_the_signature(body: bytes, secret: bytes, flip: int) -> None:
    signature = sign(body, secret)
    verify_signature(body, signature, secret)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1:]
        with pytest.raises(SignatureMismatchError):
            verify_signature(tampered, signature, secret)


# --- the delivery envelope --------------------------------------------------------------------------------

def test_delivery_headers_are_read_case_insensitively_from_lowercase_mappings() -> None:
    parsed = parse_delivery({"x-github-event": "ping", "x-github-delivery": "abc"}, b'{"zen": "z"}')
    assert (parsed.event, parsed.delivery_id, parsed.payload) == ("ping", "abc", {"zen": "z"})


@pytest.mark.parametrize(("headers", "body", "message"), [
    ({"X-GitHub-Delivery": "a"}, b"{}", "X-GitHub-Event header is missing"),
    ({"X-GitHub-Event": "ping"}, b"{}", "X-GitHub-Delivery header is missing"),
    ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "a" * 201}, b"{}", "not a delivery id"),
    ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "a"}, b"{not json", "not JSON"),
    ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "a"}, b"\xff\xfe", "not JSON"),
    ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "a"}, b"[1, 2]", "expected an object"),
    ({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "a"}, b"", "not JSON"),
])
def test_malformed_deliveries_say_what_is_wrong(headers: dict, body: bytes, message: str) -> None:
    with pytest.raises(MalformedDeliveryError, match=message):
        parse_delivery(headers, body)


# --- every real example ---------------------------------------------------------------------------------

def test_the_real_examples_are_all_there() -> None:
    files = {f"{event_of(path)}/{path.name}" for path in payload_files()}
    assert len(files) >= 70
    assert QUEUED_EXAMPLES <= files


@pytest.mark.parametrize("path", payload_files(), ids=lambda path: f"{event_of(path)}/{path.name}")
def test_each_real_example_gets_the_right_decision(path: Path) -> None:
    relative = f"{event_of(path)}/{path.name}"
    decision = decide(delivery(event_of(path), json.loads(path.read_text())), POLICY)
    assert decision.kind == expected_kind(relative), getattr(decision, "reason", decision)
    if isinstance(decision, QueueReviews):
        assert decision.jobs and all(job.delivery_id == "d-1" for job in decision.jobs)
        assert all(job.installation_id > 0 and job.head_sha for job in decision.jobs)


def test_opened_becomes_a_job_for_the_head_commit_that_supersedes_older_ones() -> None:
    payload = load_payload("pull_request/opened.payload.json")
    decision = decide(delivery("pull_request", payload), POLICY)
    assert isinstance(decision, QueueReviews) and decision.supersede
    (job,) = decision.jobs
    assert (job.owner, job.repo, job.pull_number, job.trigger) == ("Codertocat", "Hello-World", 2, "opened")
    assert job.head_sha == payload["pull_request"]["head"]["sha"]
    assert job.installation_id == payload["installation"]["id"]
    assert job.before_sha is None and job.comment_id is None
    assert decision.event_at == datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC).timestamp()  # updated_at


def test_synchronize_records_the_previous_head() -> None:
    payload = load_payload("pull_request/synchronize.payload.json")
    (job,) = decide(delivery("pull_request", payload), POLICY).jobs  # type: ignore[union-attr]
    assert job.trigger == "synchronize"
    assert (job.before_sha, job.head_sha) == (payload["before"], payload["after"])


def test_deliveries_without_an_installation_are_ignored_with_the_reason() -> None:
    decision = decide(delivery("pull_request", load_payload("pull_request/ready_for_review.payload.json")), POLICY)
    assert isinstance(decision, Ignore) and "installation" in decision.reason


def test_drafts_are_queued_for_the_repo_config_or_skipped_by_policy() -> None:
    payload = pull_request_payload(7, "a" * 40)
    payload["pull_request"]["draft"] = True
    assert decide(delivery("pull_request", payload), POLICY).kind == "queue"
    skipped = decide(delivery("pull_request", payload), TriggerPolicy(queue_drafts=False))
    assert isinstance(skipped, Ignore) and "draft" in skipped.reason


def test_closed_pull_requests_are_not_reviewed() -> None:
    payload = pull_request_payload(7, "a" * 40, action="reopened")
    payload["pull_request"]["state"] = "closed"
    assert decide(delivery("pull_request", payload), POLICY).kind == "ignore"


def test_a_known_event_without_the_needed_fields_is_malformed() -> None:
    payload = load_payload("pull_request/opened.payload.json")
    del payload["pull_request"]["head"]
    with pytest.raises(MalformedDeliveryError, match="pull_request.head"):
        decide(delivery("pull_request", payload), POLICY)


def test_an_unhandled_action_is_ignored_even_when_its_shape_differs() -> None:
    decision = decide(delivery("pull_request", {"action": "closed"}), POLICY)
    assert isinstance(decision, Ignore) and "closed" in decision.reason


def test_unknown_events_are_ignored() -> None:
    decision = decide(delivery("pull_request_review", load_payload("pull_request_review/submitted.payload.json")),
                      POLICY)
    assert isinstance(decision, Ignore) and "not handled" in decision.reason


def test_ping_pongs() -> None:
    decision = decide(delivery("ping", load_payload("ping/with-app_id.payload.json")), POLICY)
    assert isinstance(decision, Pong) and decision.zen


# --- /review comments -------------------------------------------------------------------------------------

def test_review_comment_on_a_pull_request_queues_all_reviewers() -> None:
    payload = pr_comment_payload("/review")
    decision = decide(delivery("issue_comment", payload), POLICY)
    assert isinstance(decision, QueueReviews) and not decision.supersede
    (job,) = decision.jobs
    assert job.trigger == "comment" and job.reviewers is None
    assert job.comment_id == payload["comment"]["id"] and job.requested_by == "Codertocat"
    assert job.pull_number == payload["issue"]["number"] and job.head_sha == ""


def test_review_comment_can_name_reviewers() -> None:
    decision = decide(delivery("issue_comment", pr_comment_payload("Thanks!\n\n/review SQL, docker-ci python sql\n")),
                      POLICY)
    assert decision.jobs[0].reviewers == ["sql", "docker_ci", "python"]  # type: ignore[union-attr]


def test_review_comment_with_an_unknown_reviewer_is_ignored_with_the_known_names() -> None:
    decision = decide(delivery("issue_comment", pr_comment_payload("/review cobol")), POLICY)
    assert isinstance(decision, Ignore) and "cobol" in decision.reason and "python" in decision.reason


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "NONE", "MANNEQUIN"])
def test_review_comment_from_authors_without_write_access_is_ignored(association: str) -> None:
    decision = decide(delivery("issue_comment", pr_comment_payload("/review", association=association)), POLICY)
    assert isinstance(decision, Ignore) and association in decision.reason


def test_allowed_associations_are_configurable() -> None:
    policy = TriggerPolicy(allowed_associations=frozenset({"CONTRIBUTOR"}))
    assert decide(delivery("issue_comment", pr_comment_payload("/review", "CONTRIBUTOR")), policy).kind == "queue"
    assert decide(delivery("issue_comment", pr_comment_payload("/review", "OWNER")), policy).kind == "ignore"


@pytest.mark.parametrize(("user_type", "login", "bot_login"), [
    ("Bot", "someone-else[bot]", None),
    ("User", "calora[bot]", "calora[bot]"),
    ("User", "calora[bot]", "calora"),
    ("User", "Calora", "calora[bot]"),
])
def test_review_comment_from_a_bot_or_the_app_itself_is_ignored(user_type: str, login: str, bot_login: str | None) -> None:
    payload = pr_comment_payload("/review", user_type=user_type, login=login)
    decision = decide(delivery("issue_comment", payload), TriggerPolicy(bot_login=bot_login))
    assert isinstance(decision, Ignore) and "bot" in decision.reason


def test_review_comment_on_a_plain_issue_or_closed_pull_request_is_ignored() -> None:
    plain = pr_comment_payload("/review")
    del plain["issue"]["pull_request"]
    assert "not on a pull request" in decide(delivery("issue_comment", plain), POLICY).reason  # type: ignore[union-attr]
    closed = pr_comment_payload("/review")
    closed["issue"]["state"] = "closed"
    assert decide(delivery("issue_comment", closed), POLICY).kind == "ignore"


def test_edited_and_deleted_comments_never_trigger() -> None:
    for action in ("edited", "deleted"):
        payload = pr_comment_payload("/review")
        payload["action"] = action
        assert decide(delivery("issue_comment", payload), POLICY).kind == "ignore"


@pytest.mark.parametrize("body", [
    "> /review", "please /review this", "/reviewers", "/review-all", "`/review`", "", None, "LGTM",
])
def test_text_that_is_not_a_review_command(body: str | None) -> None:
    assert parse_review_command(body) is None


@pytest.mark.parametrize(("body", "reviewers"), [
    ("/review", None), ("  /review  ", None), ("/review all", None), ("/review python", ["python"]),
    ("hi\r\n/review react,vue\r\n", ["react", "vue"]), ("/review Python PYTHON", ["python"]),
])
def test_review_commands(body: str, reviewers: list[str] | None) -> None:
    command = parse_review_command(body)
    assert command is not None and command.reviewers == reviewers


def test_unknown_reviewer_names_raise() -> None:
    with pytest.raises(UnknownReviewerError, match="known: python"):
        parse_review_command("/review python rust")


@given(names=st.lists(st.sampled_from(REVIEWER_NAMES), min_size=1, max_size=8))
def test_any_list_of_known_names_parses_in_order_without_repeats(names: list[str]) -> None:
    command = parse_review_command("/review " + " ".join(names))
    assert command is not None and command.reviewers == list(dict.fromkeys(names))


@given(text=st.text(alphabet=st.characters(blacklist_characters="/"), max_size=200))
def test_text_without_a_slash_is_never_a_command(text: str) -> None:
    assert parse_review_command(text) is None


# --- re-runs ------------------------------------------------------------------------------------------------

def test_check_run_rerequested_reuses_the_check_run_for_each_attached_pull_request() -> None:
    payload = load_payload("check_run/rerequested.payload.json")
    assert decide(delivery("check_run", payload), POLICY).kind == "ignore"  # the example has no pull request
    payload["check_run"]["pull_requests"] = [{"number": 5, "head": {"sha": payload["check_run"]["head_sha"]}}]
    decision = decide(delivery("check_run", payload), POLICY)
    (job,) = decision.jobs  # type: ignore[union-attr]
    assert (job.trigger, job.pull_number, job.check_run_id) == ("rerequested", 5, payload["check_run"]["id"])
    assert job.head_sha == payload["check_run"]["head_sha"] and job.requested_by == payload["sender"]["login"]


def test_check_runs_of_another_app_are_ignored() -> None:
    payload = load_payload("check_run/rerequested.payload.json")
    payload["check_run"]["pull_requests"] = [{"number": 5, "head": {"sha": "a" * 40}}]
    decision = decide(delivery("check_run", payload), TriggerPolicy(app_id=999))
    assert isinstance(decision, Ignore) and "999" in decision.reason


def test_check_suite_rerequested_queues_one_job_per_pull_request() -> None:
    payload = load_payload("check_suite/rerequested.payload.json")
    first = payload["check_suite"]["pull_requests"][0]
    second = copy.deepcopy(first) | {"number": 3}
    payload["check_suite"]["pull_requests"] = [first, second, copy.deepcopy(first)]
    jobs = decide(delivery("check_suite", payload), POLICY).jobs  # type: ignore[union-attr]
    assert [job.pull_number for job in jobs] == [2, 3]
    assert all(job.check_run_id is None and job.trigger == "rerequested" for job in jobs)


# --- installations ----------------------------------------------------------------------------------------

def test_installation_created_lists_its_repositories() -> None:
    decision = decide(delivery("installation", load_payload("installation/created.payload.json")), POLICY)
    assert isinstance(decision, InstallationChange)
    assert (decision.installation_id, decision.account, decision.action) == (957387, "Codertocat", "created")
    assert decision.repositories == ["Codertocat/Hello-World"]


def test_installation_repositories_added_and_removed() -> None:
    added = decide(delivery("installation_repositories",
                            load_payload("installation_repositories/added.payload.json")), POLICY)
    removed = decide(delivery("installation_repositories",
                              load_payload("installation_repositories/removed.payload.json")), POLICY)
    assert isinstance(added, InstallationChange) and added.repositories_added == ["Codertocat/Space"]
    assert isinstance(removed, InstallationChange) and removed.repositories_removed
    assert added.repositories is None
