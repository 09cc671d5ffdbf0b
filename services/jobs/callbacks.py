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
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlparse

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from db.models import CallbackState, Image, Job
from db.unit import Units
from services.infra.settings import Settings

log = logging.getLogger(__name__)


class CallbackRejected(ValueError):
    """The callback_url may not be used (bad URL or host not allowed)."""


class CallbackFailed(Exception):
    """The receiver did not take the callback; worth retrying."""


def check_callback_url(url: str, settings: Settings) -> str:
    if len(url) > 2000:
        raise CallbackRejected("callback_url is longer than 2000 characters")
    try:
        parsed = urlparse(url)
    except ValueError:
        raise CallbackRejected("callback_url is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.username or parsed.password:
        raise CallbackRejected("callback_url must be an http(s) URL without credentials")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise CallbackRejected("callback_url has an invalid port") from None
    if not allowed_target(parsed.hostname.lower(), port, settings.callback_allowed_hosts):
        allowed = ", ".join(settings.callback_allowed_hosts) or "none are configured"
        raise CallbackRejected(f"callbacks may only go to allowed hosts ({allowed}; a bare host allows ports 80 and 443)")
    return url


def allowed_target(host: str, port: int, allowed: tuple[str, ...]) -> bool:
    """`host` allows ports 80 and 443 only; `host:8080` that port; `host:*` any port."""
    return any(entry == f"{host}:{port}" or entry == f"{host}:*" or (entry == host and port in (80, 443)) for entry in allowed)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect could lead off the allow-list
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"  # nothing to send, or the URL is no longer allowed
    FAILED = "failed"  # the last attempt failed too


@dataclass(frozen=True)
class Attempt:
    job_id: str
    url: str
    body: bytes


def deliver(units: Units, settings: Settings, job_id: str, *, final_attempt: bool = False) -> DeliveryOutcome:
    """Send a job's callback once: the attempt is counted (committed) before the request, the
    result recorded after it. Raises CallbackFailed when a later attempt should retry."""
    with units() as session:
        attempt = start_attempt(session, job_id)
    if attempt is None:
        return DeliveryOutcome.SKIPPED
    try:
        check_callback_url(attempt.url, settings)  # the allow-list may have changed since
    except CallbackRejected as exc:
        log.warning("callback for job %s not sent: %s", job_id, exc)
        with units() as session:
            _finish(session, job_id, CallbackState.FAILED)
        return DeliveryOutcome.SKIPPED
    problem = send(attempt, settings)
    with units() as session:
        if problem is None:
            _finish(session, job_id, CallbackState.DELIVERED)
            return DeliveryOutcome.DELIVERED
        if final_attempt:
            _finish(session, job_id, CallbackState.FAILED)
            log.error("callback for job %s failed for good: %s", job_id, problem)
            return DeliveryOutcome.FAILED
    raise CallbackFailed(problem)


def start_attempt(session: Session, job_id: str) -> Attempt | None:
    from services.jobs.serialisers import job_json

    job = session.scalars(
        select(Job).where(Job.id == job_id).options(selectinload(Job.images).selectinload(Image.renditions))
    ).first()
    if job is None or job.callback_state != CallbackState.PENDING or not job.callback_url:
        return None
    session.execute(update(Job).where(Job.id == job_id).values(callback_attempts=Job.callback_attempts + 1))
    return Attempt(job.id, job.callback_url, json.dumps(job_json(job), separators=(",", ":")).encode())


def send(attempt: Attempt, settings: Settings) -> str | None:
    """POST the signed body; None when the receiver took it (2xx), otherwise why not."""
    timestamp = str(int(time.time()))
    try:
        request = urllib.request.Request(
            attempt.url,
            data=attempt.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "imagepipe-callback/1",
                "X-Imagepipe-Delivery": attempt.job_id,
                "X-Imagepipe-Timestamp": timestamp,
                "X-Imagepipe-Signature": signature(settings.callback_secret, timestamp, attempt.body),
            },
        )
        with _opener.open(request, timeout=settings.callback_timeout_s) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:  # network errors, and anything the HTTP client refuses: never left pending
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def _finish(session: Session, job_id: str, state: CallbackState) -> None:
    values: dict = {"callback_state": state}
    if state == CallbackState.DELIVERED:
        values["callback_delivered_at"] = datetime.now(UTC)
    session.execute(update(Job).where(Job.id == job_id, Job.callback_state == CallbackState.PENDING).values(**values))
