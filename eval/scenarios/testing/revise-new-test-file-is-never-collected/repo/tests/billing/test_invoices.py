from decimal import Decimal

from ledger.billing import invoice_total


def test_total_adds_vat_per_line():
    lines = [(Decimal("10.00"), Decimal("0.20")), (Decimal("5.00"), Decimal("0.055"))]
    assert invoice_total(lines) == Decimal("17.28")
