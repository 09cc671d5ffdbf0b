"""The kinds of listing an image belongs to, declared once. Everything that names an entity type
derives from ENTITY_KINDS: the API's routes and contract, the token grants, the key layout, the CLI's
--entity checks, the legacy migration's tables and the web page's choices (read from the contract).
A new kind is one line here (tests/e2e/test_declarations.py adds one and sees it granted)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntityKind:
    name: str  # in URLs (/api/v1/{name}/{id}/images), keys (originals/{name}/...) and grants ({name}:{id})
    # Who writes it, besides admins: holders of a grant for it, and, when True, the user whose id is
    # the entity's id (everyone writes their own avatar without a grant).
    owner_is_user: bool = False
    legacy_table: str | None = None  # the pre-S3 table its rows came from (the legacy migration)
    # Its RESO resource (ResourceName) in the RESO Media feed, None: not syndicated (docs/syndication.md).
    reso_resource: str | None = None


ENTITY_KINDS: tuple[EntityKind, ...] = (
    EntityKind("properties", legacy_table="property_images", reso_resource="Property"),
    EntityKind("projects", legacy_table="project_images"),
    EntityKind("avatars", owner_is_user=True, legacy_table="user_avatars", reso_resource="Member"),
)


def entity_kinds() -> tuple[EntityKind, ...]:
    """The declared kinds (read at call time, so a test may declare one more)."""
    return ENTITY_KINDS


def entity_types() -> tuple[str, ...]:
    return tuple(kind.name for kind in entity_kinds())


def entity_kind(name: str) -> EntityKind | None:
    return next((kind for kind in entity_kinds() if kind.name == name), None)
