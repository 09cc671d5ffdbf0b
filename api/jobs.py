"""/api/v1/jobs: a batch's status, for the listing's writers and admins."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from services.images import access
from services.jobs.serialisers import job_json

from .auth import login_required
from .common import API_PREFIX
from .context import db_session
from .errors import ApiError

bp = Blueprint("jobs", __name__, url_prefix=API_PREFIX)


@bp.get("/jobs/<job_id>", endpoint="get_job")
@login_required
def job_view(job_id: str):
    job = access.job_for(db_session(), job_id, g.principal)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id}")
    return jsonify(job_json(job))
