"""Bearer tokens: JWT signed with HS256, and nothing else accepted.

The platform's backend mints them; a token says who the bearer is (`sub`), whether they are an
admin (`role: admin`) and which listings they may write (`entities`: "properties:17",
"projects:*", ...). docs/security.md says what the backend must put in them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import jwt

from services.entities import entity_kind, entity_types

ALGORITHM = "HS256"
ENTITIES_CLAIM = "entities"
MAX_ENTITY_GRANTS = 1000


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    user_id: int
    is_admin: bool = False
    entities: frozenset[str] = field(default_factory=frozenset)  # grants as in the token

    def may_write(self, entity_type: str, entity_id: int) -> bool:
        """Admins write everything; a user writes the entities that are theirs (EntityKind.owner_is_user:
        their avatar); the rest needs a grant."""
        if self.is_admin:
            return True
        kind = entity_kind(entity_type)
        if kind is not None and kind.owner_is_user and entity_id == self.user_id:
            return True
        return f"{entity_type}:{entity_id}" in self.entities or f"{entity_type}:*" in self.entities


def grant_pattern() -> re.Pattern[str]:
    """A declared entity type, then a listing id or * for every listing of that type."""
    return re.compile(rf"^({'|'.join(map(re.escape, entity_types()))}):([1-9][0-9]{{0,18}}|\*)$")


def check_grant(grant: str) -> str:
    if not grant_pattern().match(grant):
        raise ValueError(f"an entity grant looks like properties:17 or projects:* (got {grant!r})")
    return grant


DEFAULT_AUDIENCE = "imagepipe"


@dataclass(frozen=True)
class TokenPolicy:
    """What binds a token to this service (JWT_AUDIENCE, JWT_ISSUER) and how long it may live at
    most (JWT_MAX_LIFETIME_S: `exp - iat`, so a token minted for a century is refused)."""

    audience: str = DEFAULT_AUDIENCE
    issuer: str | None = None
    max_lifetime_s: int = 7 * 24 * 3600


def issue_token(
    secret: str,
    user_id: int,
    *,
    admin: bool = False,
    ttl_s: int = 24 * 3600,
    entities: list[str] | tuple[str, ...] = (),
    policy: TokenPolicy = TokenPolicy(),
) -> str:
    """A token as `decode_token` accepts it under `policy` (what `imagepipe token` prints)."""
    if ttl_s > policy.max_lifetime_s:
        raise ValueError(f"a token may live at most {policy.max_lifetime_s} s (JWT_MAX_LIFETIME_S)")
    now = int(time.time())
    claims: dict = {"sub": str(user_id), "iat": now, "exp": now + ttl_s, "aud": policy.audience}
    if policy.issuer:
        claims["iss"] = policy.issuer
    if admin:
        claims["role"] = "admin"
    if entities:
        claims[ENTITIES_CLAIM] = [check_grant(g) for g in entities]
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str, policy: TokenPolicy = TokenPolicy()) -> Principal:
    required = ["sub", "exp", "iat", "aud"] + (["iss"] if policy.issuer else [])
    if not secret:  # a process whose role holds no JWT_SECRET accepts no token, rather than any
        raise InvalidToken("this process has no JWT_SECRET: it accepts no token")
    try:
        # Pinning the algorithm list is what rejects `alg: none` and algorithm confusion; the
        # audience (and issuer, when configured) bind the token to this service.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=policy.audience, issuer=policy.issuer,
                            options={"require": required})  # fmt: skip
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken(f"token is not for this service (its aud must be {policy.audience!r})") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"token is not valid: {exc}") from exc
    lifetime = claims["exp"] - claims["iat"] if all(isinstance(claims[c], int) for c in ("exp", "iat")) else None
    if lifetime is None or lifetime > policy.max_lifetime_s:
        raise InvalidToken(f"token lives longer than this service accepts (exp - iat at most {policy.max_lifetime_s} s)")
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise InvalidToken("token subject must be a numeric user id") from exc
    if not 1 <= user_id < 2**63:
        raise InvalidToken("token subject must be a positive user id")
    grants = claims.get(ENTITIES_CLAIM, [])
    grant = grant_pattern()
    if (
        not isinstance(grants, list)
        or len(grants) > MAX_ENTITY_GRANTS
        or not all(isinstance(g, str) and grant.match(g) for g in grants)
    ):
        raise InvalidToken(f"the {ENTITIES_CLAIM} claim must be a list of grants like properties:17 or projects:*")
    return Principal(user_id=user_id, is_admin=claims.get("role") == "admin", entities=frozenset(grants))
