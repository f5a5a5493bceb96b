from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import boto3

from app.config import settings

_s3 = boto3.client("s3", region_name=settings.aws_region)

# Exports are written under tmp/ and are only meant to be downloadable for a day.
DOWNLOAD_URL_TTL_SECONDS = 24 * 60 * 60
DOWNLOAD_URL_TTL = timedelta(seconds=DOWNLOAD_URL_TTL_SECONDS)


def store_export(tenant_id: str, file_name: str, body: bytes, content_type: str) -> str:
    """Upload a finished export and return its object key."""
    key = f"tmp/{tenant_id}/{uuid.uuid4()}/{file_name}"
    _s3.put_object(
        Bucket=settings.documents_bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        ContentDisposition=f'attachment; filename="{file_name}"',
    )
    return key


def export_expires_at(finished_at: datetime | None = None) -> datetime:
    """When the export link stops working; stored on export_jobs.expires_at."""
    return (finished_at or datetime.now(timezone.utc)) + DOWNLOAD_URL_TTL


def download_url(key: str) -> str:
    return _s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": settings.documents_bucket, "Key": key},
        ExpiresIn=DOWNLOAD_URL_TTL_SECONDS,
    )
