import logging
from datetime import datetime, timezone

from sqlalchemy import select

from app.celery import celery_app
from app.db import SessionLocal
from app.models import Contact
from sync.crm import CrmClient

log = logging.getLogger(__name__)

BATCH_SIZE = 200


@celery_app.task(name="sync.push_contacts_to_crm")
def push_contacts_to_crm():
    """Push contacts the CRM has not seen yet, a batch per request.

    The old version loaded every pending contact and made one HTTP call each; after
    the newsletter import that was 180k rows and the task hit its time limit.
    """
    crm = CrmClient.from_settings()
    pushed = 0
    offset = 0
    with SessionLocal() as session:
        while True:
            batch = session.scalars(
                select(Contact)
                .where(Contact.crm_synced_at.is_(None))
                .order_by(Contact.id)
                .offset(offset)
                .limit(BATCH_SIZE)
            ).all()
            if not batch:
                break
            crm.upsert_contacts([contact.to_crm_payload() for contact in batch])
            synced_at = datetime.now(timezone.utc)
            for contact in batch:
                contact.crm_synced_at = synced_at
            session.commit()
            pushed += len(batch)
            offset += BATCH_SIZE
    log.info("pushed %d contacts to CRM", pushed)


@celery_app.task(name="sync.pull_crm_owners")
def pull_crm_owners():
    crm = CrmClient.from_settings()
    with SessionLocal() as session:
        owners = {o["email"]: o["id"] for o in crm.list_owners()}
        for contact in session.scalars(select(Contact).where(Contact.owner_email.is_not(None))):
            contact.crm_owner_id = owners.get(contact.owner_email)
        session.commit()
