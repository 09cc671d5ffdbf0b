"""`POST /api/v1/rum`: load timings from visitors' browsers (services/delivery/rum.py). No token
(a visitor has none); the body is validated like any other (400 `invalid_parameter`), capped at
16 KB, and each client address may send RUM_PER_MINUTE beacons a minute (429 `rate_limited`).
The browser sends it with navigator.sendBeacon as text/plain (a CORS-safelisted type: no
preflight from a listing page on another origin), so the body is read as JSON whatever its type."""

from __future__ import annotations

from flask import Blueprint, Response, request

from services.delivery import rum
from services.infra.metrics import metrics

from .common import API_PREFIX
from .context import components
from .errors import ApiError
from .requests import RumBeacon, parse

bp = Blueprint("rum", __name__, url_prefix=API_PREFIX)


@bp.post("/rum")
def beacon():
    if not components().settings.rum_per_minute:
        raise ApiError(404, "not_found", "load timings are turned off here (RUM_PER_MINUTE=0)")
    limiter = components().rum_limiter
    retry_after = limiter.hit(f"rum:{request.remote_addr}")
    if retry_after is not None:
        metrics().rum_beacons.labels("rate_limited").inc()
        raise ApiError(
            429,
            "rate_limited",
            f"at most {components().settings.rum_per_minute} load-timing beacons a minute from one address",
            {"Retry-After": str(retry_after)},
        )
    try:
        data = request.get_json(force=True, silent=True)
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "send a JSON object (as text/plain, as sendBeacon does, or application/json)")
        body = parse(RumBeacon, data)
    except ApiError:
        metrics().rum_beacons.labels("invalid").inc()
        raise
    loads = [
        rum.Load(
            x.rendition,
            x.format,
            x.context,
            rum.clamp(x.load_ms / 1000, 0, rum.MAX_SECONDS),
            int(rum.clamp(x.bytes, 0, rum.MAX_BYTES)),
            rum.viewport_bucket(int(rum.clamp(x.viewport, 0, 100_000))),
        )
        for x in body.loads
    ]
    lcp = None
    if body.lcp is not None:
        c = body.lcp
        lcp = rum.Load(c.rendition, c.format, c.context, rum.clamp(c.ms / 1000, 0, rum.MAX_SECONDS), 0, "")
    rum.record(loads, lcp)
    metrics().rum_beacons.labels("accepted").inc()
    return Response(status=204)
