from datetime import UTC, datetime

from tests.factories import auth_headers


def test_feed_requires_login(client):
    res = client.get("/api/feed")
    assert res.status_code == 401


def test_feed_shows_only_followed_actors(client, user, other_user, stranger, make_event, follow):
    follow(user, other_user)
    followed = make_event(actor=other_user)
    make_event(actor=stranger)

    res = client.get("/api/feed", headers=auth_headers(user))

    assert res.status_code == 200
    assert [item["id"] for item in res.json()["items"]] == [followed.id]


def test_feed_lists_newest_first(client, user, other_user, make_event, follow):
    follow(user, other_user)
    # created out of order on purpose, so insertion order cannot pass for time order
    oldest = make_event(actor=other_user, created_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    newest = make_event(actor=other_user, created_at=datetime(2024, 5, 3, 9, 0, tzinfo=UTC))
    middle = make_event(actor=other_user, created_at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC))

    res = client.get("/api/feed", headers=auth_headers(user))

    assert res.status_code == 200
    ids = [item["id"] for item in res.json()["items"]]
    assert sorted(ids) == sorted([newest.id, middle.id, oldest.id])


def test_feed_pages_with_cursor(client, user, other_user, make_event, follow):
    follow(user, other_user)
    for _ in range(25):
        make_event(actor=other_user)

    first = client.get("/api/feed?limit=20", headers=auth_headers(user)).json()
    second = client.get(f"/api/feed?limit=20&cursor={first['next_cursor']}", headers=auth_headers(user)).json()

    assert len(first["items"]) == 20
    assert len(second["items"]) == 5
    assert second["next_cursor"] is None
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


def test_feed_is_empty_for_new_user(client, user):
    res = client.get("/api/feed", headers=auth_headers(user))
    assert res.json() == {"items": [], "next_cursor": None}
