from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, EmailStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import CurrentUser, current_user
from app.db import get_session
from app.models import Contact

router = APIRouter(prefix="/contacts", tags=["contacts"])


class ContactOut(BaseModel):
    id: int
    name: str
    email: EmailStr
    company: str | None = None

    model_config = {"from_attributes": True}


@router.get("", response_model=list[ContactOut])
def list_contacts(session: Session = Depends(get_session), user: CurrentUser = Depends(current_user)):
    return session.scalars(select(Contact).where(Contact.owner_id == user.id).order_by(Contact.name)).all()


@router.delete("/{contact_id}", status_code=204)
def delete_contact(contact_id: int, session: Session = Depends(get_session), user: CurrentUser = Depends(current_user)):
    contact = session.get(Contact, contact_id)
    if contact is None or contact.owner_id != user.id:
        raise HTTPException(status_code=404, detail="contact not found")
    session.delete(contact)
    session.commit()
    return Response(status_code=204)
