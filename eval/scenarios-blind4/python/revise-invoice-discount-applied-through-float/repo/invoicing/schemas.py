from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field


class InvoiceLineIn(BaseModel):
    description: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=10_000)
    unit_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)


class InvoiceIn(BaseModel):
    customer_id: int
    currency: str = Field(pattern="^[A-Z]{3}$")
    due_date: date
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=200)
    discount_percent: float = Field(default=0.0, ge=0, le=100)


class InvoiceOut(BaseModel):
    id: int
    number: str
    currency: str
    net: Decimal
    tax: Decimal
    gross: Decimal
