"""Invoice total computation.

All amounts are Decimals in the invoice currency; rounding happens once per total, half up,
as the tax authority requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Totals:
    net: Decimal
    discount: Decimal
    tax: Decimal
    gross: Decimal


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def compute_totals(lines: list[Line], tax_rate: Decimal, discount_percent: float = 0.0) -> Totals:
    subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    discount = Decimal("0")
    if discount_percent:
        discount = Decimal(float(subtotal) * discount_percent / 100)
    net = _round(subtotal - discount)
    tax = _round(net * tax_rate)
    return Totals(net=net, discount=_round(discount), tax=tax, gross=net + tax)
