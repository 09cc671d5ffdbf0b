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


def issue_token(
    secret: str, user_id: int, *, admin: bool = False, ttl_s: int = 24 * 3600, entities: list[str] | tuple[str, ...] = ()
) -> str:
    now = int(time.time())
    claims: dict = {"sub": str(user_id), "iat": now, "exp": now + ttl_s}
    if admin:
        claims["role"] = "admin"
    if entities:
        claims[ENTITIES_CLAIM] = [check_grant(g) for g in entities]
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Principal:
    try:
        # Pinning the algorithm list is what rejects `alg: none` and algorithm confusion.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"token is not valid: {exc}") from exc
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
