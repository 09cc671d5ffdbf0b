"""A monthly cost estimate from what is stored and what was served: bytes per storage class
(originals older than ORIGINALS_ARCHIVE_DAYS counted in Glacier Instant Retrieval, as the
lifecycle `imagepipe bucket setup` writes moves them), egress and requests from the ingested
access logs scaled to 30 days, at the prices of the settings (AWS list prices, dated by
PRICES_AS_OF). Per rendition too, so a change of quality or sizes shows what it saves.

An estimate: free tiers, volume tiers, Glacier IR's 128 KB minimum object size and retrieval fees,
and requests made by imagepipe itself are not counted (docs/operations.md "Cost and delivery").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.models import StorageUsage
from services.storage_admin.stats import STORED_ORIGINAL

GB = 1024**3  # AWS bills a GB as 2^30 bytes
MONTH_DAYS = 30


def originals_by_class(session: Session, archive_days: int, *, now: datetime | None = None) -> dict[str, int]:
    """Bytes of stored originals by storage class, from the usage rollup's days of upload."""
    now = now or datetime.now(UTC)
    u = StorageUsage
    if not archive_days:
        total = session.scalar(
            select(func.coalesce(func.sum(u.bytes), 0)).where(u.kind == "image", u.status.in_(STORED_ORIGINAL))
        )
        return {"STANDARD": int(total or 0), "GLACIER_IR": 0}
    cutoff: date = now.astimezone(UTC).date() - timedelta(days=archive_days)
    archived = case((u.day < cutoff, 1), else_=0)
    rows = session.execute(
        select(archived, func.coalesce(func.sum(u.bytes), 0))
        .where(u.kind == "image", u.status.in_(STORED_ORIGINAL))
        .group_by(archived)
    ).all()
    out = {"STANDARD": 0, "GLACIER_IR": 0}
    for old, size in rows:
        out["GLACIER_IR" if old else "STANDARD"] += int(size)
    return out


def _money(value: float) -> float:
    return round(value, 2)


def estimate(settings, originals: dict[str, int], renditions: dict, egress: dict, *, now: datetime | None = None) -> dict:
    """`renditions`: the statistics' stored renditions (name → format → objects, bytes);
    `egress`: services/delivery/usage.egress's answer."""
    now = now or datetime.now(UTC)
    p = settings
    rendition_bytes = sum(c["bytes"] for formats in renditions.values() for c in formats.values())
    scale = 0.0
    served: dict[str, dict] = {}
    sources: dict[str, dict] = {}
    if egress.get("known") and egress.get("first_day_with_requests"):
        first = date.fromisoformat(egress["first_day_with_requests"])
        covered = min(egress["days"], (now.astimezone(UTC).date() - first).days + 1)
        scale = MONTH_DAYS / max(1, covered)
        served, sources = egress["renditions"], egress["sources"]
    egress_price = {"s3": p.price_s3_egress_gb, "cloudfront": p.price_cdn_egress_gb}
    request_price = {"s3": p.price_s3_get_10k, "cloudfront": p.price_cdn_requests_10k}
    egress_usd = sum(s["bytes"] * scale / GB * egress_price.get(name, p.price_s3_egress_gb) for name, s in sources.items())
    requests_usd = sum(
        s["requests"] * scale / 10_000 * request_price.get(name, p.price_s3_get_10k) for name, s in sources.items()
    )
    # one egress price per byte for the per-rendition split: the mix of sources overall
    total_egress_bytes = sum(s["bytes"] for s in sources.values())
    per_byte = egress_usd / (total_egress_bytes * scale) if total_egress_bytes and scale else 0.0
    per_rendition = {}
    for name in sorted(set(renditions) | {n for n in served if n != "original"}):
        stored = sum(c["bytes"] for c in renditions.get(name, {}).values())
        sent = sum(c["bytes"] for c in served.get(name, {}).values()) * scale
        per_rendition[name] = {
            "stored_gb": round(stored / GB, 3),
            "egress_gb_month": round(sent / GB, 3),
            "usd_month": _money(stored / GB * p.price_storage_gb_month + sent * per_byte),
        }
    monthly = {
        "originals_standard": originals["STANDARD"] / GB * p.price_storage_gb_month,
        "originals_archive": originals["GLACIER_IR"] / GB * p.price_archive_gb_month,
        "renditions": rendition_bytes / GB * p.price_storage_gb_month,
        "egress": egress_usd,
        "requests": requests_usd,
    }
    monthly["total"] = sum(monthly.values())
    return {
        "currency": "USD",
        "prices_as_of": p.prices_as_of,
        "prices": {
            "storage_gb_month": p.price_storage_gb_month,
            "archive_gb_month": p.price_archive_gb_month,
            "s3_egress_gb": p.price_s3_egress_gb,
            "cdn_egress_gb": p.price_cdn_egress_gb,
            "s3_get_10k": p.price_s3_get_10k,
            "cdn_requests_10k": p.price_cdn_requests_10k,
        },
        "stored_gb": {
            "STANDARD": round((originals["STANDARD"] + rendition_bytes) / GB, 3),
            "GLACIER_IR": round(originals["GLACIER_IR"] / GB, 3),
        },
        "monthly": {k: _money(v) for k, v in monthly.items()},
        "per_rendition": per_rendition,
        "egress_scaled_from_days": round(MONTH_DAYS / scale) if scale else None,
        "note": "list prices, no free tier or volume discount; originals older than ORIGINALS_ARCHIVE_DAYS counted"
        " in Glacier IR; egress and requests from the ingested logs, scaled to 30 days",
    }
