"""What the /api/v1 blueprints share: the entity in the path, the writer check, the upload rate
limit, the callback URL check, the image a writer may change, the 202 of an accepted upload."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import g, jsonify, url_for
from sqlalchemy.orm import Session

from db.models import Image
from db.unit import after_commit
from pipeline.errors import ImageError
from services.entities import entity_types
from services.images import access
from services.images.ingest import IngestResult, accept
from services.infra.audit import Actor
from services.infra.metrics import metrics
from services.jobs.callbacks import CallbackRejected, check_callback_url
from services.jobs.status import job_status
from services.moderation.reuse import grants_json

from .context import components, db_session
from .errors import ApiError

API_PREFIX = "/api/v1"


def actor() -> Actor:
    """Who acts in this request, for the audit trail: the token's subject and the request's id."""
    return Actor.user(g.principal.user_id, g.get("request_id"))


def grants() -> str:
    """Who uploads and what they can write now, recorded on each new image: a perceptual match to
    another listing is judged against it (services/moderation/reuse.py)."""
    return grants_json(g.principal)


def entity_in_path(entity: str) -> str:
    if entity not in entity_types():
        raise ApiError(404, "unknown_entity", f"entity must be one of {', '.join(entity_types())}")
    return entity


def entity_id_in_path(value: int) -> int:
    if not 1 <= value <= access.MAX_ENTITY_ID:
        raise ApiError(400, "invalid_parameter", f"entity_id must be an integer from 1 to {access.MAX_ENTITY_ID}")
    return value


def writable(entity: str, entity_id: int) -> None:
    """Uploading needs a token that grants the listing (the listing itself is public)."""
    if not access.may_write(g.principal, entity, entity_id):
        raise ApiError(
            403,
            "entity_forbidden",
            f"your token does not grant writing {entity}/{entity_id}; the platform grants listings in the token's entities claim",
        )


def rate_limit(cost: int, *, refund: int = 0) -> None:
    """Count `cost` uploads; over the limit, 429 (and `refund` counted earlier is given back)."""
    limiter = components().limiter
    key = f"uploads:{g.principal.user_id}"
    retry_after = limiter.hit(key, cost) if cost else None
    if retry_after is not None:
        if refund:
            limiter.release(key, refund)
        cost += refund
        per_minute = components().settings.rate_limit_uploads_per_minute
        message = (
            (f"this request has {cost} files and at most {per_minute} uploads a minute are allowed: send fewer files per request")
            if cost > per_minute
            else (f"at most {per_minute} uploads a minute; try again in {retry_after} s")
        )
        raise ApiError(429, "rate_limited", message, {"Retry-After": str(retry_after)})


def callback_url(value: object) -> str | None:
    if value in (None, ""):
        return None
    try:
        return check_callback_url(str(value), components().settings)
    except CallbackRejected as exc:
        raise ApiError(400, "callback_not_allowed", str(exc)) from None


def owned(image_id: int, *, deleting_too: bool = False) -> Image:
    image = access.image_for(db_session(), image_id, g.principal, deleting_too=deleting_too)
    if image is None:
        raise ApiError(404, "image_not_found", f"no image {image_id}")
    return image


def accepted(result: IngestResult, rejected: list | None = None):
    """202 with the job; the request's commit then enqueues the new images (ingest.accept)."""
    job = result.job
    assert job is not None
    images = [{"id": i.id, "status": i.status, "filename": i.original_filename} for i in result.images]
    # The same bytes already belong to this entity: point at that image instead of a copy.
    images += [
        {"id": d.image.id, "status": d.image.status, "filename": d.filename, "duplicate_of": d.image.id}
        for d in result.duplicates
    ]
    body: dict = {
        "job": {"id": job.id, "status": job_status(job.images), "status_url": url_for("jobs.get_job", job_id=job.id)},
        "images": images,
    }
    if rejected:
        body["rejected"] = [
            {"filename": r.filename, "error": {"code": r.error.code, "message": r.error.message}} for r in rejected
        ]
    resp = jsonify(body)
    resp.status_code = 202
    resp.headers["Location"] = body["job"]["status_url"]
    return resp


@contextmanager
def counting_refusals(entity: str) -> Iterator[None]:
    """A refused file on the direct path (its declared type or size at `POST /uploads`, its bytes
    at `/complete`) counts in imagepipe_uploads_total as a refused form upload does: once per
    request, under the refusal's code."""
    try:
        yield
    except ImageError as exc:
        metrics().uploads.labels(entity, exc.code).inc()
        raise


def count_uploads(session: Session, entity: str, result: IngestResult) -> None:
    """Refusals now; acceptances once committed (a broker that refuses them makes the request 503)."""
    uploads = metrics().uploads
    for rejected in result.rejected:
        uploads.labels(entity, rejected.error.code).inc()
    accepted_n, duplicates = len(result.images), len(result.duplicates)
    if accepted_n or duplicates:

        def count() -> None:
            for outcome, n in (("accepted", accepted_n), ("duplicate", duplicates)):
                if n:
                    uploads.labels(entity, outcome).inc(n)

        after_commit(session, count)


def answer_ingest(session: Session, queue, entity: str, result: IngestResult):
    """What an upload route (form, raw body, imports) answers once its files are in: the counts
    recorded, then 202 with the job (files refused listed), or, when nothing was acceptable, the
    (first) file's own error: 413 or 415."""
    count_uploads(session, entity, result)
    if result.job is None:
        first = result.rejected[0].error
        raise ApiError(first.http_status, first.code, first.message)
    return accepted(accept(session, queue, result), result.rejected)
