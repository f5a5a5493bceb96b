from decimal import Decimal

import pytest

from ledger.billing import refund_amount


def test_partial_refund_is_prorated_by_days_left():
    assert refund_amount(Decimal("30.00"), days_used=10, days_in_period=30) == Decimal("20.00")


def test_refund_after_the_period_is_zero():
    assert refund_amount(Decimal("30.00"), days_used=31, days_in_period=30) == Decimal("0.00")


def test_negative_days_are_refused():
    with pytest.raises(ValueError):
        refund_amount(Decimal("30.00"), days_used=-1, days_in_period=30)
