"""Read-side use cases: images, listings, jobs and their derived status."""
from __future__ import annotations

from sqlalchemy import and_, or_, select
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
                after: tuple[int, int] | None = None) -> list[Image]:
    """A gallery in its order: `position` ascending, then newest first. `after` is the
    (position, id) of the last image of the previous page. Images being deleted are gone."""
    query = (
        select(Image)
        .where(Image.entity_type == entity_type, Image.entity_id == entity_id, Image.status != ImageStatus.DELETING)
        .options(selectinload(Image.renditions))
        .order_by(Image.position.asc(), Image.id.desc())
        .limit(limit)
    )
    if after is not None:
        position, last_id = after
        query = query.where(or_(Image.position > position, and_(Image.position == position, Image.id < last_id)))
    return list(session.scalars(query))


def get_job(session: Session, job_id: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.id == job_id).options(selectinload(Job.images).selectinload(Image.renditions))
    ).first()


def job_status(images: list[Image]) -> str:
    """Derived from the images; one being deleted no longer counts."""
    statuses = [i.status for i in images if i.status != ImageStatus.DELETING]
    if not statuses or all(s == ImageStatus.PENDING for s in statuses):
        return JobStatus.QUEUED
    if any(s in (ImageStatus.PENDING, ImageStatus.PROCESSING) for s in statuses):
        return JobStatus.PROCESSING
    if all(s == ImageStatus.READY for s in statuses):
        return JobStatus.SUCCEEDED
    if all(s == ImageStatus.FAILED for s in statuses):
        return JobStatus.FAILED
    return JobStatus.PARTIAL
