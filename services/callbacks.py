"""Job callbacks: when a job ends, POST its JSON to the URL the uploader gave, signed.

- Only hosts on CALLBACK_ALLOWED_HOSTS may be called (no server-side request forgery into
  the private network), over http(s), and redirects are not followed.
- The body is the job JSON of GET /api/v1/jobs/{id}. Headers: `X-Imagepipe-Timestamp` (Unix
  seconds) and `X-Imagepipe-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" with
  CALLBACK_SECRET>`; receivers check it and reject stale timestamps.
- Delivery is at least once: a non-2xx answer or a network error is retried with backoff by
  the task, up to CALLBACK_MAX_ATTEMPTS; `X-Imagepipe-Delivery` (the job id) lets a receiver
  drop repeats.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlparse

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from db.models import Image, Job, JobImage

from .config import Settings
from .queries import JobStatus, job_status

log = logging.getLogger(__name__)

TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL)
TIMEOUT_S = 10


class CallbackRejected(ValueError):
    """The callback_url may not be used (bad URL or host not allowed)."""


class CallbackFailed(Exception):
    """The receiver did not take the callback; worth retrying."""


def check_callback_url(url: str, settings: Settings) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.username or parsed.password:
        raise CallbackRejected("callback_url must be an http(s) URL without credentials")
    if len(url) > 2000:
        raise CallbackRejected("callback_url is longer than 2000 characters")
    if parsed.hostname.lower() not in settings.callback_allowed_hosts:
        allowed = ", ".join(settings.callback_allowed_hosts) or "none are configured"
        raise CallbackRejected(f"callbacks may only go to allowed hosts ({allowed})")
    return url


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def due_jobs(session: Session, image_id: int) -> list[str]:
    """Jobs holding this image that have a pending callback and have just ended."""
    jobs = session.scalars(
        select(Job)
        .join(JobImage, JobImage.job_id == Job.id)
        .where(JobImage.image_id == image_id, Job.callback_state == "pending")
        .options(selectinload(Job.images))
    ).all()
    return [j.id for j in jobs if job_status(j.images) in TERMINAL]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect could lead off the allow-list
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def deliver(session: Session, settings: Settings, job_id: str, *, final_attempt: bool = False) -> str:
    """delivered, skipped (nothing to send) or raises CallbackFailed (retry later)."""
    from .views import job_json

    job = session.scalars(select(Job).where(Job.id == job_id).options(selectinload(Job.images).selectinload(
        Image.renditions))).first()
    if job is None or job.callback_state != "pending" or not job.callback_url:
        return "skipped"
    body = json.dumps(job_json(job), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(job.callback_url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "imagepipe-callback/1",
        "X-Imagepipe-Delivery": job.id,
        "X-Imagepipe-Timestamp": timestamp,
        "X-Imagepipe-Signature": signature(settings.callback_secret, timestamp, body),
    })
    session.execute(update(Job).where(Job.id == job_id).values(callback_attempts=Job.callback_attempts + 1))
    session.commit()
    try:
        check_callback_url(job.callback_url, settings)  # the allow-list may have changed since
        with _opener.open(request, timeout=TIMEOUT_S) as resp:
            status = resp.status
    except CallbackRejected as exc:
        _finish(session, job_id, "failed")
        log.warning("callback for job %s not sent: %s", job_id, exc)
        return "skipped"
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return _failed(session, job_id, f"{type(exc).__name__}: {exc}", final_attempt)
    if 200 <= status < 300:
        _finish(session, job_id, "delivered")
        return "delivered"
    return _failed(session, job_id, f"HTTP {status}", final_attempt)


def _finish(session: Session, job_id: str, state: str) -> None:
    values = {"callback_state": state}
    if state == "delivered":
        values["callback_delivered_at"] = datetime.now(UTC)
    session.execute(update(Job).where(Job.id == job_id, Job.callback_state == "pending").values(**values))
    session.commit()


def _failed(session: Session, job_id: str, why: str, final_attempt: bool) -> str:
    if final_attempt:
        _finish(session, job_id, "failed")
        log.error("callback for job %s failed for good: %s", job_id, why)
        return "failed"
    raise CallbackFailed(why)
