"""Delivery figures added to the storage statistics (`GET /api/v1/admin/storage/stats`,
`imagepipe stats`): egress from the ingested access logs and the monthly cost estimate."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.delivery import cost, usage

DEFAULT_DAYS = 30


def add_delivery(session: Session, settings, out: dict, *, days: int = DEFAULT_DAYS) -> dict:
    out["egress"] = usage.egress(session, out["renditions"], days=days)
    originals = cost.originals_by_class(session, settings.originals_archive_days)
    out["cost"] = cost.estimate(settings, originals, out["renditions"], out["egress"])
    return out
