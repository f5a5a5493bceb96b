from datetime import datetime, timezone

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.auth import CurrentUser, current_user
from app.db import get_session
from app.models import Note

router = APIRouter(prefix="/notes", tags=["notes"])


class NoteOut(BaseModel):
    id: int
    title: str
    body: str
    updated_at: datetime
    autosaved_at: datetime | None


class NoteUpdate(BaseModel):
    body: str = Field(max_length=200_000)
    autosave: bool = False


def _owned_note(session: Session, note_id: int, user: CurrentUser) -> Note:
    note = session.get(Note, note_id)
    if note is None or note.owner_id != user.id:
        raise HTTPException(status_code=404, detail="note not found")
    return note


@router.get("/{note_id}", response_model=NoteOut)
def read_note(note_id: int, session: Session = Depends(get_session), user: CurrentUser = Depends(current_user)):
    return _owned_note(session, note_id, user)


@router.put("/{note_id}", response_model=NoteOut)
def update_note(
    note_id: int,
    payload: NoteUpdate,
    session: Session = Depends(get_session),
    user: CurrentUser = Depends(current_user),
):
    note = _owned_note(session, note_id, user)
    now = datetime.now(timezone.utc)
    note.body = payload.body
    note.updated_at = now
    # The editor shows "autosaved" vs "saved"; the history view only lists explicit saves.
    note.autosaved_at = now if payload.autosave else None
    session.commit()
    return note
