"""/api/v1/admin: images in one status across listings, storage statistics, orphan scans, reuse
findings, takedowns and the blocklist, the audit trail."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, url_for

from db.models import ScanStatus, StorageScan
from services.delivery.report import add_delivery
from services.images import access
from services.images.queries import images_in_status
from services.images.serialisers import image_json
from services.infra import audit
from services.moderation import blocklist, reuse
from services.moderation.takedown import takedown, takedown_json
from services.storage_admin import orphans, stats

from .auth import admin_required
from .common import API_PREFIX, actor, entity_in_path
from .context import AfterCommit, components, db_session
from .errors import ApiError, queue_unavailable
from .requests import (
    AdminImagesQuery,
    AuditQuery,
    BlocklistQuery,
    ReuseQuery,
    ScanRequest,
    StatsQuery,
    TakedownRequest,
    json_body,
    query,
)

bp = Blueprint("admin", __name__, url_prefix=API_PREFIX + "/admin")


@bp.get("/images")
@admin_required
def admin_images():
    """Images in one status across every entity (e.g. failed ones, for support)."""
    params = query(AdminImagesQuery)
    rows = images_in_status(db_session(), params.status, params.limit)
    store = components().store
    return jsonify({"status": params.status, "images": [image_json(i, store, full=True) for i in rows]})


@bp.get("/storage/stats")
@admin_required
def admin_storage_stats():
    """Storage statistics from the database (index-only aggregates), or `?source=bucket`: from a
    listing of the bucket, with its difference from the database; egress from the ingested access
    logs over `?days=` and the monthly cost estimate either way."""
    params = query(StatsQuery)
    session = db_session()
    db = stats.database_stats(session)
    out = db if params.source == "database" else stats.bucket_report(components().store, db)
    return jsonify(add_delivery(session, components().settings, out, days=params.days))


@bp.post("/storage/cleanup-orphaned")
@admin_required
def admin_cleanup_orphaned():
    """Start an orphan scan (a dry run unless `"dry_run": false` is sent); 202 with the scan,
    whose report is read at its Location."""
    body = json_body(ScanRequest, optional=True)
    scope = None
    if body.entity is not None or body.entity_id is not None:
        if body.entity is None or body.entity_id is None:
            raise ApiError(400, "invalid_parameter", "send entity and entity_id together (or neither: the whole bucket)")
        scope = (entity_in_path(body.entity), body.entity_id)
    session = db_session()
    settings, queue = components().settings, components().queue
    scan = orphans.create_scan(
        session,
        dry_run=body.dry_run,
        grace_s=settings.orphan_grace_s,
        requested_by=f"user:{g.principal.user_id}",
        entity=scope,
        actor=actor(),
    )
    orphans.start_scan(session, queue, scan)

    def present():
        session.refresh(scan)
        if scan.status == ScanStatus.FAILED and scan.error == orphans.QUEUE_REFUSED:
            raise queue_unavailable()
        return jsonify(orphans.scan_json(scan)), 202, {"Location": url_for("admin.admin_storage_scan", scan_id=scan.id)}

    return AfterCommit(present)


def _scan(scan_id: str) -> StorageScan:
    scan = db_session().get(StorageScan, scan_id) if len(scan_id) == 32 and scan_id.isalnum() else None
    if scan is None:
        raise ApiError(404, "scan_not_found", "no such scan")
    return scan


@bp.get("/storage/scans/<scan_id>")
@admin_required
def admin_storage_scan(scan_id: str):
    """A scan's progress, counts and the first keys of each finding (the report has them all)."""
    return jsonify(orphans.scan_json(_scan(scan_id)))


@bp.get("/storage/scans/<scan_id>/report")
@admin_required
def admin_storage_scan_report(scan_id: str):
    """The complete report: one JSON object per line (finding, key or image, bytes, action)."""
    scan = _scan(scan_id)
    if scan.status != ScanStatus.SUCCEEDED or not scan.report_key:
        raise ApiError(409, "scan_not_finished", f"the scan is {scan.status}; its report exists once it has succeeded")
    data = components().store.get(scan.report_key)
    return Response(
        data,
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="orphan-scan-{scan.id}.jsonl"'},
    )


# -- lifted photos and takedowns (services/moderation/) ------------------------------------------
@bp.get("/reuse")
@admin_required
def admin_reuse():
    """Reuse findings, oldest first: photos matching a photo of another listing their uploader
    could not write."""
    params = query(ReuseQuery)
    rows = reuse.findings(db_session(), since=params.since, after_id=params.after_id, limit=params.limit)
    return jsonify({"findings": rows, "next_after_id": rows[-1]["id"] if len(rows) == params.limit else None})


@bp.post("/images/<int:image_id>/takedown")
@admin_required
def admin_takedown(image_id: int):
    """Delete the image everywhere (objects, CDN), put its picture on the blocklist, audit it."""
    body = json_body(TakedownRequest)
    session, c = db_session(), components()
    image = access.image_for(session, image_id, g.principal)
    if image is None:
        raise ApiError(404, "image_not_found", f"no image {image_id}")
    done = takedown(session, c.store, c.queue, c.settings, image, actor(), body.reason)
    return AfterCommit(lambda: jsonify(takedown_json(done)))  # deleted or deleting: known once committed


@bp.get("/blocklist")
@admin_required
def admin_blocklist():
    params = query(BlocklistQuery)
    rows = blocklist.entries(db_session(), after_id=params.after_id, limit=params.limit)
    return jsonify(
        {
            "entries": [blocklist.entry_json(e) for e in rows],
            "next_after_id": rows[-1].id if len(rows) == params.limit else None,
        }
    )


@bp.delete("/blocklist/<int:entry_id>")
@admin_required
def admin_blocklist_remove(entry_id: int):
    """The picture may be uploaded again; the audit row keeps what the entry said."""
    if not 1 <= entry_id <= access.MAX_IMAGE_ID or blocklist.remove(db_session(), actor(), entry_id) is None:
        raise ApiError(404, "blocklist_entry_not_found", f"no blocklist entry {entry_id}")
    return "", 204


@bp.get("/audit")
@admin_required
def admin_audit():
    """The audit trail, newest first, filtered."""
    p = query(AuditQuery)
    if p.entity_id is not None and p.entity is None:
        raise ApiError(400, "invalid_parameter", "send entity with entity_id")
    rows = audit.entries(
        db_session(),
        since=p.since,
        until=p.until,
        action=p.action,
        actor=p.actor,
        image_id=p.image_id,
        entity=(entity_in_path(p.entity), p.entity_id) if p.entity else None,
        before_id=p.before_id,
        limit=p.limit,
    )
    return jsonify(
        {"entries": [audit.entry_json(r) for r in rows], "next_before_id": rows[-1].id if len(rows) == p.limit else None}
    )
