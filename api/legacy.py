"""Old links keep working: GET on the legacy URL prefix (LEGACY_URL_PREFIX, `/uploads/`) answers
301 to the migrated image's large rendition, and 404 for anything not (yet) migrated."""

from __future__ import annotations

from flask import Blueprint, redirect, request

from services.legacy.redirects import redirect_for

from .context import components, db_session
from .errors import ApiError


def blueprint(prefix: str) -> Blueprint:
    bp = Blueprint("legacy", __name__, url_prefix=prefix.rstrip("/"))

    @bp.get("/<path:legacy_path>")
    def legacy_url(legacy_path: str):
        target = redirect_for(db_session(), components().store, request.path)
        if target is None:
            raise ApiError(404, "not_found", "no migrated image has this legacy URL")
        resp = redirect(target, code=301)
        resp.headers["Cache-Control"] = "public, max-age=86400"
        return resp

    return bp
