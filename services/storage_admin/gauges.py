"""What the database says at scrape time, for GET /metrics: images per status and the last orphan
scan's findings (a Prometheus collector; services/infra/metrics.py keeps the process's own)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from db.models import ImageStatus, StorageUsage
from services.infra.cdn import pending
from services.storage_admin.stats import last_scan


class DatabaseCollector:
    """Images per status (from the storage usage rollup: a few hundred rows) and the last orphan
    scan's findings, read at scrape time."""

    def __init__(self, sessions):
        self.sessions = sessions

    def collect(self):

        images = GaugeMetricFamily("imagepipe_images", "Images per status (from the database)", labels=["status"])
        scan = GaugeMetricFamily(
            "imagepipe_orphan_scan_findings", "What the last finished orphan scan found", labels=["finding", "unit"]
        )
        scan_time = GaugeMetricFamily(
            "imagepipe_orphan_scan_finished_timestamp_seconds", "When the last orphan scan finished (unix time)"
        )
        cdn_pending = GaugeMetricFamily(
            "imagepipe_cdn_invalidation_pending_paths", "CDN paths queued for invalidation, not yet sent"
        )
        cdn_age = GaugeMetricFamily(
            "imagepipe_cdn_invalidation_oldest_pending_age_seconds",
            "How long the oldest CDN path queued for invalidation has waited (0 when none waits)",
        )
        try:
            with self.sessions() as session:
                waiting, oldest = pending(session)
                counts = {s.value: 0 for s in ImageStatus}
                for status, n in session.execute(
                    select(StorageUsage.status, func.sum(StorageUsage.objects))
                    .where(StorageUsage.kind == "image")
                    .group_by(StorageUsage.status)
                ):
                    counts[status] = int(n or 0)
                found = last_scan(session)
        except SQLAlchemyError:
            return
        for status, n in counts.items():
            images.add_metric([status], n)
        yield images
        cdn_pending.add_metric([], waiting)
        yield cdn_pending
        cdn_age.add_metric([], (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0)
        yield cdn_age
        if found is not None:
            orphans, missing = found["orphans"], found["missing"]
            scan.add_metric(["orphans", "objects"], orphans.get("objects", 0))
            scan.add_metric(["orphans", "bytes"], orphans.get("bytes", 0))
            scan.add_metric(["missing_originals", "objects"], missing.get("originals", 0))
            scan.add_metric(["missing_renditions", "objects"], missing.get("renditions", 0))
            yield scan
            if found["finished_at"]:
                scan_time.add_metric([], datetime.fromisoformat(found["finished_at"]).timestamp())
                yield scan_time
