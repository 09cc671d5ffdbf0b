"""Read-side use cases: images, listings, jobs and their derived status."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Image, ImageStatus, Job


class JobStatus:
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"


def get_image(session: Session, image_id: int) -> Image | None:
    return session.scalars(
        select(Image).where(Image.id == image_id).options(selectinload(Image.renditions))
    ).first()


def list_images(session: Session, entity_type: str, entity_id: int, *, limit: int = 50,
                before_id: int | None = None) -> list[Image]:
    query = (
        select(Image)
        .where(Image.entity_type == entity_type, Image.entity_id == entity_id)
        .options(selectinload(Image.renditions))
        .order_by(Image.created_at.desc(), Image.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Image.id < before_id)
    return list(session.scalars(query))


def get_job(session: Session, job_id: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.id == job_id).options(selectinload(Job.images).selectinload(Image.renditions))
    ).first()


def job_status(images: list[Image]) -> str:
    statuses = [i.status for i in images]
    if not statuses or all(s == ImageStatus.PENDING for s in statuses):
        return JobStatus.QUEUED
    if any(s in (ImageStatus.PENDING, ImageStatus.PROCESSING) for s in statuses):
        return JobStatus.PROCESSING
    if all(s == ImageStatus.READY for s in statuses):
        return JobStatus.SUCCEEDED
    if all(s == ImageStatus.FAILED for s in statuses):
        return JobStatus.FAILED
    return JobStatus.PARTIAL
