"""The durable queue on a real SQLite file: deliveries, superseding, claims, leases, installations."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.jobs import ReviewJobSpec
from app.store import Store
from app.webhooks import Delivery, Ignore, InstallationChange, QueueReviews, TriggerPolicy, decide
from tests.app.receiver_support import load_payload

T0 = 1_800_000_000.0


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'queue.sqlite'}")
    yield store
    store.close()


def spec(delivery_id: str, head_sha: str = "a" * 40, number: int = 1, trigger: str = "synchronize") -> ReviewJobSpec:
    return ReviewJobSpec(delivery_id=delivery_id, installation_id=1, owner="acme", repo="web", pull_number=number,
                         head_sha=head_sha, trigger=trigger)  # type: ignore[arg-type]


def push(store: Store, delivery_id: str, head_sha: str, number: int = 1, now: float = T0,
         event_at: float | None = None):
    decision = QueueReviews(jobs=[spec(delivery_id, head_sha, number)], supersede=True, event_at=event_at)
    return store.record_delivery(delivery_id, "pull_request", "synchronize", decision, now=now)


def test_a_delivery_is_recorded_and_its_job_queued(store: Store) -> None:
    result = push(store, "d1", "a" * 40)
    assert not result.duplicate and result.outcome == "queued" and len(result.job_ids) == 1
    (job,) = store.list_jobs()
    assert (job.status, job.attempts, job.pr_key, job.delivery_id) == ("queued", 0, "acme/web#1", "d1")
    (delivery,) = store.list_deliveries()
    assert (delivery.delivery_id, delivery.outcome, delivery.jobs_queued) == ("d1", "queued", 1)


def test_a_redelivery_is_acknowledged_and_not_queued_again(store: Store) -> None:
    push(store, "d1", "a" * 40)
    again = push(store, "d1", "a" * 40)
    assert again.duplicate and again.job_ids == []
    assert len(store.list_jobs()) == 1 and len(store.list_deliveries()) == 1


def test_concurrent_copies_of_one_delivery_queue_one_job(store: Store) -> None:
    results = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        results.append(push(store, "same-id", "a" * 40))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.duplicate for result in results) == [False] + [True] * 7
    assert len(store.list_jobs()) == 1


def test_ignored_deliveries_are_recorded_with_their_reason(store: Store) -> None:
    store.record_delivery("d9", "pull_request_review", "submitted", Ignore(reason="not handled"))
    (delivery,) = store.list_deliveries()
    assert (delivery.outcome, delivery.reason, delivery.jobs_queued) == ("ignored", "not handled", 0)
    assert store.record_delivery("d9", "pull_request_review", "submitted", Ignore(reason="x")).duplicate


def test_a_newer_push_supersedes_queued_jobs_of_older_heads(store: Store) -> None:
    first = push(store, "d1", "a" * 40).job_ids[0]
    other_pr = push(store, "d2", "a" * 40, number=2).job_ids[0]
    comment = store.enqueue(spec("d3", head_sha="", trigger="comment"))
    newer = push(store, "d4", "b" * 40)
    assert newer.superseded == 2
    states = {job.id: (job.status, job.superseded_by) for job in store.list_jobs()}
    assert states[first] == ("superseded", newer.job_ids[0])
    assert states[comment] == ("superseded", newer.job_ids[0])
    assert states[other_pr] == ("queued", None)
    assert states[newer.job_ids[0]] == ("queued", None)


def test_a_late_delivery_of_an_older_push_supersedes_nothing_and_is_itself_superseded(store: Store) -> None:
    newer = push(store, "d-new", "b" * 40, event_at=T0 + 60)
    late = push(store, "d-old", "a" * 40, event_at=T0)
    assert (late.superseded, late.late) == (0, 1)
    states = {job.delivery_id: (job.status, job.superseded_by) for job in store.list_jobs()}
    assert states == {"d-new": ("queued", None), "d-old": ("superseded", newer.job_ids[0])}
    assert store.claim("w", 10, now=T0 + 1).spec.head_sha == "b" * 40  # type: ignore[union-attr]


def test_pushes_in_the_same_second_supersede_in_arrival_order(store: Store) -> None:
    push(store, "d1", "a" * 40, event_at=T0)
    second = push(store, "d2", "b" * 40, event_at=T0)
    assert (second.superseded, second.late) == (1, 0)


def test_a_running_job_is_not_superseded(store: Store) -> None:
    push(store, "d1", "a" * 40)
    running = store.claim("w1", 60, now=T0)
    assert running is not None
    assert push(store, "d2", "b" * 40).superseded == 0
    assert store.get_job(running.id).status == "running"  # type: ignore[union-attr]


def test_the_same_head_again_supersedes_nothing(store: Store) -> None:
    push(store, "d1", "a" * 40)
    assert push(store, "d2", "a" * 40).superseded == 0


def test_claims_take_the_oldest_due_job_and_hold_it(store: Store) -> None:
    first = push(store, "d1", "a" * 40, number=1, now=T0).job_ids[0]
    second = push(store, "d2", "a" * 40, number=2, now=T0 + 1).job_ids[0]
    assert store.claim("w1", 30, now=T0 - 10) is None  # nothing due yet
    claimed = store.claim("w1", 30, now=T0 + 2)
    assert claimed is not None and claimed.id == first and claimed.attempts == 1
    assert claimed.spec == spec("d1", "a" * 40, 1)
    assert store.claim("w2", 30, now=T0 + 3).id == second  # type: ignore[union-attr]
    assert store.claim("w3", 30, now=T0 + 4) is None
    job = store.get_job(first)
    assert (job.status, job.lease_owner, job.lease_expires_at) == ("running", "w1", T0 + 32)  # type: ignore[union-attr]


def test_an_expired_lease_is_claimed_again_and_the_old_owner_loses_it(store: Store) -> None:
    push(store, "d1", "a" * 40)
    dead = store.claim("dead-worker", 10, now=T0)
    assert store.claim("w2", 10, now=T0 + 9) is None  # still leased
    again = store.claim("w2", 10, now=T0 + 11)
    assert again is not None and again.id == dead.id  # type: ignore[union-attr]
    assert (again.attempts, again.expired_leases) == (2, 1)
    assert "dead-worker" in (again.last_error or "")
    assert not store.complete(dead.id, "dead-worker")  # type: ignore[union-attr]
    assert not store.extend_lease(dead.id, "dead-worker", 10)  # type: ignore[union-attr]
    assert store.complete(again.id, "w2")
    assert store.get_job(again.id).status == "done"  # type: ignore[union-attr]


def test_the_owner_renews_its_lease(store: Store) -> None:
    push(store, "d1", "a" * 40)
    job = store.claim("w1", 10, now=T0)
    assert store.extend_lease(job.id, "w1", 10, now=T0 + 8)  # type: ignore[union-attr]
    assert store.claim("w2", 10, now=T0 + 12) is None
    assert store.claim("w2", 10, now=T0 + 19) is not None


def test_retry_later_and_fail_and_release(store: Store) -> None:
    push(store, "d1", "a" * 40)
    job = store.claim("w1", 10, now=T0)
    assert store.retry_later(job.id, "w1", "boom", available_at=T0 + 100)  # type: ignore[union-attr]
    view = store.get_job(job.id)  # type: ignore[union-attr]
    assert (view.status, view.last_error, view.available_at, view.lease_owner) == ("queued", "boom", T0 + 100, None)
    assert store.claim("w1", 10, now=T0 + 50) is None
    job = store.claim("w1", 10, now=T0 + 100)
    assert job is not None and job.attempts == 2
    assert store.release(job.id, "w1", now=T0 + 101)
    assert store.get_job(job.id).attempts == 1  # type: ignore[union-attr]  # a released run is not an attempt
    job = store.claim("w1", 10, now=T0 + 101)
    assert store.fail(job.id, "w1", "gave up")  # type: ignore[union-attr]
    assert store.get_job(job.id).status == "failed"  # type: ignore[union-attr]
    assert store.claim("w1", 10, now=T0 + 1000) is None


def test_concurrent_replays_of_one_request_under_new_delivery_ids_queue_one_job(store: Store) -> None:
    results = []
    barrier = threading.Barrier(8)

    def deliver(index: int) -> None:
        barrier.wait()
        results.append(push(store, f"replay-{index}", "a" * 40))

    threads = [threading.Thread(target=deliver, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.outcome for result in results) == ["queued"] + ["replay"] * 7
    (job,) = store.list_jobs()
    assert all(result.replayed == [job.id] for result in results if result.outcome == "replay")
    assert len(store.list_deliveries()) == 8


def test_a_deferred_job_keeps_its_attempt_count_and_waits_until_the_given_time(store: Store) -> None:
    push(store, "d1", "a" * 40)
    job = store.claim("w1", 10, now=T0)
    assert job is not None and job.attempts == 1
    assert store.defer(job.id, "w1", "rate limited", not_before=T0 + 3600)
    view = store.get_job(job.id)
    assert view is not None and (view.status, view.attempts, view.available_at) == ("queued", 0, T0 + 3600)
    assert store.claim("w1", 10, now=T0 + 3599) is None
    again = store.claim("w1", 10, now=T0 + 3600)
    assert again is not None and again.attempts == 1


def test_a_pending_conclusion_is_claimed_when_due_and_kept_until_done(store: Store) -> None:
    push(store, "d1", "a" * 40)
    job = store.claim("w1", 10, now=T0)
    assert job is not None
    assert store.fail(job.id, "w1", "GitHub 404", now=T0, conclude_at=T0 + 60, conclusion_error="HTTP 502")
    assert store.get_job(job.id).status == "failed"  # type: ignore[union-attr]
    assert store.claim_conclusion(30, now=T0 + 59) is None
    pending = store.claim_conclusion(30, now=T0 + 60)
    assert pending is not None and (pending.job_id, pending.reason, pending.tries) == (job.id, "GitHub 404", 2)
    assert pending.spec.delivery_id == "d1"
    assert store.claim_conclusion(30, now=T0 + 61) is None  # leased to the first claimer
    store.conclusion_later(job.id, T0 + 200, "HTTP 502 again")
    assert store.claim_conclusion(30, now=T0 + 199) is None
    assert store.claim_conclusion(30, now=T0 + 200) is not None
    store.conclusion_done(job.id)
    assert store.pending_conclusions() == 0 and store.claim_conclusion(30, now=T0 + 10_000) is None


def test_parallel_claims_never_take_one_job_twice(store: Store) -> None:
    for number in range(60):
        store.enqueue(spec(f"d{number}", number=number), now=T0)
    taken: list[int] = []
    lock = threading.Lock()

    def drain(owner: str) -> None:
        while (job := store.claim(owner, 60, now=T0 + 1)) is not None:
            with lock:
                taken.append(job.id)
            store.complete(job.id, owner)

    threads = [threading.Thread(target=drain, args=(f"w{index}",)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(job.id for job in store.list_jobs(limit=100))
    assert Counter(taken).most_common(1)[0][1] == 1
    assert store.queue_depth()["done"] == 60


def test_queue_depth_counts_every_status(store: Store) -> None:
    assert store.queue_depth() == {"queued": 0, "running": 0, "done": 0, "failed": 0, "superseded": 0}
    push(store, "d1", "a" * 40)
    push(store, "d2", "b" * 40)
    store.claim("w", 10, now=T0 + 1)
    assert store.queue_depth() == {"queued": 0, "running": 1, "done": 0, "failed": 0, "superseded": 1}


def test_the_queue_survives_reopening_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    first = Store.from_url(url)
    push(first, "d1", "a" * 40)
    first.close()
    second = Store.from_url(url)
    assert [job.delivery_id for job in second.list_jobs()] == ["d1"]
    assert push(second, "d1", "a" * 40).duplicate
    second.close()


def record_installation_event(store: Store, event: str, relative: str, delivery_id: str) -> None:
    decision = decide(Delivery(delivery_id=delivery_id, event=event, payload=load_payload(relative)), TriggerPolicy())
    assert isinstance(decision, InstallationChange)
    assert store.record_delivery(delivery_id, event, decision.action, decision).outcome == "recorded"


def test_installation_events_keep_the_installations_table(store: Store) -> None:
    record_installation_event(store, "installation", "installation/created.payload.json", "i1")
    (installation,) = store.list_installations()
    assert (installation.installation_id, installation.account) == (957387, "Codertocat")
    assert installation.repositories == ["Codertocat/Hello-World"] and not installation.deleted
    record_installation_event(store, "installation_repositories", "installation_repositories/added.payload.json", "i2")
    assert store.list_installations()[0].repositories == ["Codertocat/Hello-World", "Codertocat/Space"]
    record_installation_event(store, "installation", "installation/suspend.payload.json", "i3")
    by_id = {row.installation_id: row for row in store.list_installations()}
    suspended_id = load_payload("installation/suspend.payload.json")["installation"]["id"]
    assert by_id[suspended_id].suspended and not by_id[957387].suspended
    record_installation_event(store, "installation", "installation/unsuspend.payload.json", "i4")
    unsuspended_id = load_payload("installation/unsuspend.payload.json")["installation"]["id"]
    assert not {row.installation_id: row for row in store.list_installations()}[unsuspended_id].suspended
    record_installation_event(store, "installation", "installation/deleted.payload.json", "i5")
    deleted_id = load_payload("installation/deleted.payload.json")["installation"]["id"]
    assert {row.installation_id: row for row in store.list_installations()}[deleted_id].deleted


def test_an_in_memory_database_works_for_trials_and_tests() -> None:
    store = Store.from_url("sqlite://")
    push(store, "d1", "a" * 40)
    assert push(store, "d1", "a" * 40).duplicate
    assert store.claim("w", 10, now=T0 + 1) is not None
    store.close()
