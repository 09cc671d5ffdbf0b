"""The JSON shape of a job, for GET /api/v1/jobs/{id} and the job's callback (no Flask here)."""

from __future__ import annotations

from db.models import ImageStatus, Job
from services.images.serialisers import error_json, iso
from services.jobs.status import job_status


def job_json(job: Job) -> dict:
    images = [i for i in job.images if i.status != ImageStatus.DELETING]
    counts = {s: sum(1 for i in images if i.status == s) for s in (ImageStatus.READY, ImageStatus.FAILED)}
    out = {
        "id": job.id,
        "status": job_status(images),
        "status_url": f"/api/v1/jobs/{job.id}",
        "entity_type": job.entity_type,
        "entity_id": job.entity_id,
        "created_at": iso(job.created_at),
        "total": len(images),
        "succeeded": counts[ImageStatus.READY],
        "failed": counts[ImageStatus.FAILED],
        "pending": len(images) - counts[ImageStatus.READY] - counts[ImageStatus.FAILED],
        "images": [{"id": i.id, "status": i.status, "filename": i.original_filename, "error": error_json(i)} for i in images],
        "callback": None,
    }
    if job.callback_url:
        out["callback"] = {
            "url": job.callback_url,
            "state": job.callback_state,
            "attempts": job.callback_attempts,
            "delivered_at": iso(job.callback_delivered_at),
        }
    return out
