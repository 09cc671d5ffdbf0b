"""Bearer-token authentication for the API."""

from __future__ import annotations

from functools import wraps

from flask import g, request

from services.infra.tokens import InvalidToken, Principal, decode_token

from .context import components
from .errors import ApiError


def current_principal(*, optional: bool = False) -> Principal | None:
    header = request.headers.get("Authorization", "")
    if optional and not header:
        return None  # anonymous: the public view
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send a bearer token: Authorization: Bearer <token>",
            {"WWW-Authenticate": 'Bearer realm="imagepipe"'},
        )
    try:
        settings = components().settings
        return decode_token(settings.jwt_secret, token.strip(), settings.token_policy)
    except InvalidToken as exc:
        raise ApiError(
            401, "invalid_token", str(exc), {"WWW-Authenticate": 'Bearer realm="imagepipe", error="invalid_token"'}
        ) from exc


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.principal = current_principal()
        return view(*args, **kwargs)

    return wrapper


def optional_login(view):
    """Anonymous callers are welcome (g.principal is None); a token, when sent, must be valid."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.principal = current_principal(optional=True)
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
