"""The audit trail: who did what to which image or listing, when, in which request.

Every destructive or admin action writes one row in the transaction that does it (so a row
exists exactly when the action happened): delete, takedown, blocklist changes, an orphan
clean-up that deletes, a rendition regeneration, a migration rollback, an admin's cover change.
Rows are never updated or deleted by the application; on PostgreSQL a trigger refuses both
(migration 0011)."""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEntry, Image


class Action(StrEnum):
    DELETE = "delete"
    TAKEDOWN = "takedown"
    BLOCKLIST_ADD = "blocklist_add"
    BLOCKLIST_REMOVE = "blocklist_remove"
    ORPHANS_DELETE = "orphans_delete"
    REGENERATE = "regenerate"
    MIGRATION_ROLLBACK = "migration_rollback"
    COVER_CHANGE = "cover_change"


@dataclass(frozen=True)
class Actor:
    """Who acts: `user:<token subject>` through the API (with the request's id), `cli:<login>` from
    an operator's shell."""

    name: str
    request_id: str | None = None

    @classmethod
    def user(cls, user_id: int, request_id: str | None) -> Actor:
        return cls(f"user:{user_id}", request_id)

    @classmethod
    def cli(cls) -> Actor:
        try:
            login = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container's)
            login = "unknown"
        return cls(f"cli:{login}"[:100])


def record(
    session: Session,
    actor: Actor,
    action: Action,
    *,
    image: Image | None = None,
    image_id: int | None = None,
    entity: tuple[str, int | None] | None = None,
    detail: dict | None = None,
) -> AuditEntry:
    if image is not None:
        image_id, entity = image.id, (image.entity_type, image.entity_id)
    row = AuditEntry(
        actor=actor.name,
        action=action.value,
        image_id=image_id,
        entity_type=entity[0] if entity else None,
        entity_id=entity[1] if entity else None,
        request_id=actor.request_id,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
    )
    session.add(row)
    return row


def entries(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    image_id: int | None = None,
    entity: tuple[str, int | None] | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first; `before_id` pages on (the last id of the previous page)."""
    stmt = select(AuditEntry)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if image_id is not None:
        stmt = stmt.where(AuditEntry.image_id == image_id)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity_type == entity[0])
        if entity[1] is not None:
            stmt = stmt.where(AuditEntry.entity_id == entity[1])
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))


def entry_json(row: AuditEntry) -> dict:
    return {
        "id": row.id,
        "at": row.at.isoformat() if row.at else None,
        "actor": row.actor,
        "action": row.action,
        "image_id": row.image_id,
        "entity": {"type": row.entity_type, "id": row.entity_id} if row.entity_type else None,
        "request_id": row.request_id,
        "detail": json.loads(row.detail) if row.detail else None,
    }
