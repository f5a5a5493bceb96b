import hashlib

from django.db.models import Count, Max
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import condition, require_GET

from events.feeds import render_ics
from events.models import Event


def _upcoming_public_events():
    return Event.objects.filter(is_public=True, ends_at__gte=timezone.now())


def _public_calendar_etag(request):
    # Calendar apps poll this feed every few minutes. Fingerprinting the rows that
    # go into it lets us answer 304 without rendering several hundred VEVENTs.
    stats = _upcoming_public_events().aggregate(
        n=Count("id"),
        event_changed=Max("updated_at"),
        venue_changed=Max("venue__updated_at"),
    )
    parts = [str(stats["n"])]
    for key in ("event_changed", "venue_changed"):
        parts.append(stats[key].isoformat() if stats[key] else "-")
    fingerprint = "|".join(parts).encode()
    return hashlib.md5(fingerprint, usedforsecurity=False).hexdigest()


@require_GET
@cache_control(public=True, max_age=300)
@condition(etag_func=_public_calendar_etag)
def public_calendar(request):
    events = _upcoming_public_events().select_related("venue").order_by("starts_at")
    body = render_ics(events, calendar_name="Riverside Arts Centre")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="events.ics"'
    return response


@require_GET
def event_ics(request, slug):
    event = Event.objects.select_related("venue").get(slug=slug, is_public=True)
    body = render_ics([event], calendar_name=event.title)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{event.slug}.ics"'
    return response
