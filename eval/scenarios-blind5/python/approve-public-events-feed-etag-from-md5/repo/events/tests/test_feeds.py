from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_public_calendar_lists_only_public_upcoming_events(client, event_factory):
    shown = event_factory(is_public=True, title="Jazz Night")
    event_factory(is_public=False, title="Staff Party")
    event_factory(is_public=True, title="Last Year", ends_at=timezone.now() - timedelta(days=1))

    response = client.get(reverse("events:public-calendar"))

    assert response.status_code == 200
    body = response.content.decode()
    assert f"SUMMARY:{shown.title}" in body
    assert "Staff Party" not in body
    assert "Last Year" not in body


def test_public_calendar_answers_304_when_nothing_changed(client, event_factory):
    event_factory(is_public=True)
    url = reverse("events:public-calendar")

    first = client.get(url)
    again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert again.status_code == 304


def test_public_calendar_etag_changes_when_a_venue_is_renamed(client, event_factory):
    event = event_factory(is_public=True)
    url = reverse("events:public-calendar")
    etag = client.get(url)["ETag"]

    event.venue.name = "Main Hall (Upstairs)"
    event.venue.save()

    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200
