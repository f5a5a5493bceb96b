from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.orm import Session

from invoicing.auth import User, current_user
from invoicing.db import get_session
from invoicing.models import Customer, Invoice, InvoiceLine
from invoicing.numbering import next_invoice_number
from invoicing.schemas import InvoiceIn, InvoiceOut
from invoicing.totals import Line, compute_totals

router = APIRouter(prefix="/invoices", tags=["invoices"])


@router.post("", status_code=201, response_model=InvoiceOut)
def create_invoice(
    payload: InvoiceIn,
    session: Session = Depends(get_session),
    user: User = Depends(current_user),
) -> Invoice:
    customer = session.get(Customer, payload.customer_id)
    if customer is None or customer.account_id != user.account_id:
        raise HTTPException(status_code=404, detail="customer not found")

    lines = [Line(item.description, item.quantity, item.unit_price) for item in payload.lines]
    totals = compute_totals(lines, customer.tax_rate, payload.discount_percent)

    invoice = Invoice(
        account_id=user.account_id,
        customer_id=customer.id,
        number=next_invoice_number(session, user.account_id),
        currency=payload.currency,
        due_date=payload.due_date,
        net=totals.net,
        tax=totals.tax,
        gross=totals.gross,
        lines=[InvoiceLine(description=l.description, quantity=l.quantity, unit_price=l.unit_price) for l in lines],
    )
    session.add(invoice)
    session.commit()
    return invoice
