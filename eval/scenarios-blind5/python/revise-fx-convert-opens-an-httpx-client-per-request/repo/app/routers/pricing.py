import logging
from decimal import ROUND_HALF_UP, Decimal

import httpx
from fastapi import APIRouter, HTTPException, Query

from app.config import settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/pricing", tags=["pricing"])

SUPPORTED_CURRENCIES = {"EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK"}
CENT = Decimal("0.01")


def _check_currency(code: str) -> str:
    code = code.upper()
    if code not in SUPPORTED_CURRENCIES:
        raise HTTPException(status_code=422, detail=f"unsupported currency {code}")
    return code


async def _live_rate(source: str, target: str) -> Decimal:
    client = httpx.AsyncClient(
        base_url=settings.FX_API_URL,
        headers={"apikey": settings.FX_API_KEY},
        timeout=httpx.Timeout(5.0, connect=2.0),
    )
    resp = await client.get("/latest", params={"base": source, "symbols": target})
    resp.raise_for_status()
    return resp.json(parse_float=Decimal)["rates"][target]


@router.get("/convert")
async def convert(
    amount: Decimal = Query(gt=0, max_digits=12, decimal_places=2),
    source: str = Query(min_length=3, max_length=3),
    target: str = Query(min_length=3, max_length=3),
):
    source, target = _check_currency(source), _check_currency(target)
    if source == target:
        rate = Decimal(1)
    else:
        try:
            rate = await _live_rate(source, target)
        except (httpx.HTTPError, KeyError) as exc:
            log.warning("fx rate lookup failed for %s->%s: %s", source, target, exc)
            raise HTTPException(status_code=503, detail="exchange rates unavailable") from exc
    converted = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return {"amount": str(converted), "currency": target, "rate": str(rate)}
