"""CDN invalidation through an outbox.

Renditions are served with `Cache-Control: immutable, max-age=31536000`, so a deleted, taken
down or re-rendered object would stay in CloudFront's caches for a year. With
AWS_CLOUDFRONT_DISTRIBUTION_ID set, whatever removes or rewrites objects queues their paths
(`queue_paths`) in the same transaction: the paths exist exactly when the change committed. The
beat task (`send_pending`) sends them in batches of up to CDN_INVALIDATION_BATCH paths, one
CreateInvalidation each, whose CallerReference is the batch's id: a batch given out but not
recorded as sent (a crash, a timeout) is sent again with the same reference, which CloudFront
answers with the invalidation it already has instead of a second one. TooManyInvalidationsInProgress
ends the run (the task retries with backoff); nothing is lost meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import CdnInvalidation
from services.infra.settings import Settings

log = logging.getLogger(__name__)

THROTTLED = "TooManyInvalidationsInProgress"


class Throttled(Exception):
    """CloudFront has too many invalidations in progress: try again later."""


def queue_paths(session: Session, settings: Settings, keys: Iterable[str]) -> int:
    """Queue the CDN paths of these object keys (renditions, and originals: CloudFront serves
    them through signed URLs when a key pair is set); nothing without a distribution. Returns
    how many were queued."""
    if not settings.aws_cloudfront_distribution_id:
        return 0
    paths = sorted({"/" + key for key in keys if key})
    session.add_all(CdnInvalidation(path=path) for path in paths)
    return len(paths)


def cloudfront_client(settings: Settings):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "cloudfront",
        endpoint_url=settings.aws_cloudfront_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        region_name="us-east-1",  # CloudFront's API is global, signed for us-east-1
        config=Config(
            connect_timeout=settings.store_connect_timeout_s,
            read_timeout=settings.store_read_timeout_s,
            retries={"total_max_attempts": 2, "mode": "standard"},
        ),
    )


@dataclass
class SendReport:
    batches: list[str] = field(default_factory=list)  # invalidation ids, in order
    paths: int = 0
    throttled: bool = False

    def as_dict(self) -> dict:
        return {"batches": len(self.batches), "paths": self.paths, "throttled": self.throttled, "invalidations": self.batches}


def _next_batch(session: Session, size: int) -> str | None:
    """The batch to send: one given out earlier and not recorded as sent (sent again, with the
    same reference), else a new one of the oldest pending paths. None when nothing is pending."""
    pending = CdnInvalidation.sent_at.is_(None)
    batch_id = session.scalar(select(CdnInvalidation.batch_id).where(pending, CdnInvalidation.batch_id.is_not(None)).limit(1))
    if batch_id is not None:
        return batch_id
    stmt = select(CdnInvalidation.id).where(pending, CdnInvalidation.batch_id.is_(None)).order_by(CdnInvalidation.id).limit(size)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)  # two senders at once take different rows
    ids = list(session.scalars(stmt))
    if not ids:
        return None
    batch_id = uuid.uuid4().hex
    session.execute(update(CdnInvalidation).where(CdnInvalidation.id.in_(ids)).values(batch_id=batch_id))
    return batch_id


def send_pending(
    units: Callable[[], AbstractContextManager[Session]],
    settings: Settings,
    client=None,
    *,
    max_batches: int = 50,
    on_sent: Callable[[int], None] | None = None,
) -> SendReport:
    """Send the queued paths, batch after batch, until none is left (or `max_batches`)."""
    report = SendReport()
    distribution = settings.aws_cloudfront_distribution_id
    if not distribution:
        return report
    client = client or cloudfront_client(settings)
    for _ in range(max_batches):
        with units() as session:
            batch_id = _next_batch(session, settings.cdn_invalidation_batch)
            if batch_id is None:
                break
            paths = sorted(set(session.scalars(select(CdnInvalidation.path).where(CdnInvalidation.batch_id == batch_id))))
        try:
            answer = client.create_invalidation(
                DistributionId=distribution,
                InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": batch_id},
            )
        except Exception as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if code == THROTTLED:
                report.throttled = True
                log.warning("CloudFront has too many invalidations in progress; %d paths wait", len(paths))
                raise Throttled(f"{len(paths)} paths of batch {batch_id} wait") from exc
            raise
        invalidation_id = answer["Invalidation"]["Id"]
        with units() as session:
            session.execute(
                update(CdnInvalidation)
                .where(CdnInvalidation.batch_id == batch_id)
                .values(sent_at=datetime.now(UTC), invalidation_id=invalidation_id)
            )
        log.info("CDN invalidation %s: %d paths (batch %s)", invalidation_id, len(paths), batch_id)
        report.batches.append(invalidation_id)
        report.paths += len(paths)
        if on_sent is not None:
            on_sent(len(paths))
    return report


def pending(session: Session) -> tuple[int, datetime | None]:
    """How many paths wait, and since when the oldest has."""
    count, oldest = session.execute(
        select(func.count(), func.min(CdnInvalidation.queued_at)).where(CdnInvalidation.sent_at.is_(None))
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count or 0), oldest
