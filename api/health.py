"""Liveness and readiness. Readiness says up or down per dependency; what went wrong (hosts,
ports, driver messages) goes to the log, not to whoever asks."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, request

from db.session import ping as db_ping

from .context import components
from .errors import ApiError

bp = Blueprint("health", __name__)
log = logging.getLogger("imagepipe.api")


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    rt = components().runtime
    checks = {"database": lambda: db_ping(rt.engine), "broker": rt.queue.ping, "store": rt.store.ping}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready", whatever raised it
            log.warning("readiness: %s is down: %s: %s", name, type(exc).__name__, str(exc)[:500])
            results[name] = "down"
    down = [name for name, r in results.items() if r != "ok"]
    if down:
        resp = jsonify(
            {
                "status": "unavailable",
                "down": down,
                "checks": results,
                "error": {"code": "not_ready", "message": f"not reachable: {', '.join(down)}"},
            }
        )
        resp.status_code = 503
        return resp
    return jsonify({"status": "ok", "checks": results})


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus exposition: this API's processes summed (multiprocess mode), the queues' depth
    and oldest message, images per status, the last orphan scan (services/infra/metrics.py)."""
    c = components()
    token = c.settings.metrics_token
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "send the metrics token: Authorization: Bearer <METRICS_TOKEN>",
                {"WWW-Authenticate": 'Bearer realm="imagepipe-metrics"'},
            )
    from services.infra.metrics import exposition

    body, content_type = exposition(c.collectors)
    return Response(body, content_type=content_type)
