"""Jobs: their status (derived from their images) and the one place that decides whether a
job's callback is due."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import TERMINAL_JOB_STATUSES, CallbackState, Image, ImageStatus, Job, JobImage, JobStatus
from db.unit import after_commit
from services.infra.queue import TaskQueue


def job_status(images: list[Image]) -> JobStatus:
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


def callback_due(job: Job) -> bool:
    """A job with a callback still to send that has ended."""
    return (
        bool(job.callback_url)
        and job.callback_state == CallbackState.PENDING
        and (job_status(job.images) in TERMINAL_JOB_STATUSES)
    )


def notify_when_ended(session: Session, queue: TaskQueue, *, image_id: int | None = None, job_id: str | None = None) -> None:
    """Once this transaction commits, send the callback of every job (of this image, or this job)
    that has then ended. Judged after the commit, so two images of one job finishing at the same
    moment in two workers cannot both miss that the job has ended."""

    def send_due() -> None:
        query = (
            select(Job)
            .where(Job.callback_state == CallbackState.PENDING)
            .options(selectinload(Job.images))
            .execution_options(populate_existing=True)
        )
        if image_id is not None:
            query = query.join(JobImage, JobImage.job_id == Job.id).where(JobImage.image_id == image_id)
        else:
            query = query.where(Job.id == job_id)
        for job in session.scalars(query).all():
            if callback_due(job):
                queue.deliver_callback(job.id)

    after_commit(session, send_due)
