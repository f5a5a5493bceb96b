from decimal import Decimal

from invoicing.totals import Line, compute_totals


def test_totals_round_half_up_once():
    lines = [Line("Widget", 3, Decimal("0.35")), Line("Setup", 1, Decimal("10.00"))]
    totals = compute_totals(lines, Decimal("0.19"))
    assert totals.net == Decimal("11.05")
    assert totals.tax == Decimal("2.10")
    assert totals.gross == Decimal("13.15")


def test_zero_rate():
    totals = compute_totals([Line("Book", 2, Decimal("12.50"))], Decimal("0"))
    assert totals.gross == Decimal("25.00")


def test_discount_reduces_net_before_tax():
    totals = compute_totals([Line("Consulting", 8, Decimal("125.00"))], Decimal("0.20"), discount_percent=10)
    assert totals.discount == Decimal("100.00")
    assert totals.net == Decimal("900.00")
    assert totals.tax == Decimal("180.00")
    assert totals.gross == Decimal("1080.00")
