"""CORS for pages on other origins (www.platform -> api.platform): the origins of
CORS_ALLOWED_ORIGINS, exactly (the same setting `imagepipe bucket setup` applies to the bucket).
Bearer tokens travel in a header, so credentials (cookies) stay off; a preflight is answered
before authentication, as browsers send it without the token."""

from __future__ import annotations

from flask import Flask, Response, request

# What the routes use: uploads (POST, multipart or JSON), PATCH/DELETE of images, job polling.
METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
HEADERS = "Authorization, Content-Type, X-Request-ID, X-Requested-With"
EXPOSED = "Location, Retry-After, X-Request-ID"
MAX_AGE_S = 600  # Chromium caps a preflight's cache at 2 h, Firefox at 24 h; 10 min bounds a change


def install(app: Flask, origins: tuple[str, ...]) -> None:
    allowed = set(origins)
    any_origin = "*" in allowed

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin and (any_origin or origin in allowed):
            return origin
        return None

    @app.before_request
    def _preflight():
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        resp = Response(status=204)
        origin = allowed_origin()
        if origin is not None:  # otherwise no CORS header: the browser refuses, the API says nothing more
            resp.headers["Access-Control-Allow-Methods"] = METHODS
            resp.headers["Access-Control-Allow-Headers"] = HEADERS
            resp.headers["Access-Control-Max-Age"] = str(MAX_AGE_S)
        return resp

    @app.after_request
    def _cors(resp):
        resp.vary.add("Origin")
        origin = allowed_origin()
        if origin is not None:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Expose-Headers"] = EXPOSED
        return resp
