"""What the database says at scrape time, for GET /metrics: images per status, the last orphan
scan's findings, the CDN invalidation backlog and yesterday's egress from the ingested access logs
(a Prometheus collector; services/infra/metrics.py keeps the process's own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from db.models import EgressUsage, ImageStatus, StorageUsage
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
        egress = GaugeMetricFamily(
            "imagepipe_egress_last_day_bytes",
            "Bytes sent yesterday (UTC) per source and rendition, from the ingested access logs",
            labels=["source", "rendition"],
        )
        egress_requests = GaugeMetricFamily(
            "imagepipe_egress_last_day_requests",
            "Requests delivered yesterday (UTC) per source and rendition, from the ingested access logs",
            labels=["source", "rendition"],
        )
        hit_ratio = GaugeMetricFamily(
            "imagepipe_cdn_cache_hit_ratio_last_day", "CloudFront's cache hit ratio yesterday (UTC), from its logs"
        )
        try:
            with self.sessions() as session:
                yesterday = datetime.now(UTC).date() - timedelta(days=1)
                e = EgressUsage
                served = session.execute(
                    select(e.source, e.name, func.sum(e.bytes), func.sum(e.requests), func.sum(e.hits))
                    .where(e.day == yesterday)
                    .group_by(e.source, e.name)
                ).all()
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
        cdn_hits = cdn_requests = 0
        for source, name, size, requests, hits in served:
            egress.add_metric([source, name], int(size or 0))
            egress_requests.add_metric([source, name], int(requests or 0))
            if source == "cloudfront":
                cdn_hits += int(hits or 0)
                cdn_requests += int(requests or 0)
        yield egress
        yield egress_requests
        if cdn_requests:  # no sample (not 0) when nothing was served through the CDN
            hit_ratio.add_metric([], cdn_hits / cdn_requests)
        yield hit_ratio
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
