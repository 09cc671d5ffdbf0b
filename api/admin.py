"""/api/v1/admin: images in one status across listings, storage statistics, orphan scans."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, url_for

from db.models import ScanStatus, StorageScan
from services.images.queries import images_in_status
from services.images.serialisers import image_json
from services.storage_admin import orphans, stats

from .auth import admin_required
from .common import API_PREFIX, entity_in_path
from .context import AfterCommit, components, db_session
from .errors import ApiError, queue_unavailable
from .requests import AdminImagesQuery, ScanRequest, StatsQuery, json_body, query

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
    listing of the bucket, with its difference from the database."""
    source = query(StatsQuery).source
    db = stats.database_stats(db_session())
    return jsonify(db if source == "database" else stats.bucket_report(components().store, db))


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
        session, dry_run=body.dry_run, grace_s=settings.orphan_grace_s, requested_by=f"user:{g.principal.user_id}", entity=scope
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
