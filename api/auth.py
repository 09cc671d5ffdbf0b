"""Bearer-token authentication for the API."""
from __future__ import annotations

from functools import wraps

from flask import g, request

from services.tokens import InvalidToken, Principal, decode_token

from .errors import ApiError


def current_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send a bearer token: Authorization: Bearer <token>",
                       {"WWW-Authenticate": 'Bearer realm="imagepipe"'})
    from .app import components

    try:
        return decode_token(components().settings.jwt_secret, token.strip())
    except InvalidToken as exc:
        raise ApiError(401, "invalid_token", str(exc),
                       {"WWW-Authenticate": 'Bearer realm="imagepipe", error="invalid_token"'}) from exc


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.principal = current_principal()
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.principal = current_principal()
        if not g.principal.is_admin:
            raise ApiError(403, "forbidden", "this route needs a token with role: admin")
        return view(*args, **kwargs)

    return wrapper
