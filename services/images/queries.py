"""Read-side use cases: images and listings."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from db.models import Image, ImageStatus
from services.syndication.media import PUBLIC


def get_image(session: Session, image_id: int) -> Image | None:
    return session.scalars(select(Image).where(Image.id == image_id).options(selectinload(Image.renditions))).first()


def list_images(
    session: Session,
    entity_type: str,
    entity_id: int,
    *,
    limit: int = 50,
    after: tuple[int, int] | None = None,
    ready_only: bool = False,
) -> list[Image]:
    """A gallery in its order: `position` ascending, then newest first. `after` is the
    (position, id) of the last image of the previous page. Images being deleted are gone;
    `ready_only`: the public gallery (ready images whose RESO Permission is Public)."""
    shown = (
        and_(Image.status == ImageStatus.READY, Image.permission == PUBLIC)
        if ready_only
        else Image.status != ImageStatus.DELETING
    )
    query = (
        select(Image)
        .where(Image.entity_type == entity_type, Image.entity_id == entity_id, shown)
        .options(selectinload(Image.renditions), selectinload(Image.reuse_findings))
        .order_by(Image.position.asc(), Image.id.desc())
        .limit(limit)
    )
    if after is not None:
        position, last_id = after
        query = query.where(or_(Image.position > position, and_(Image.position == position, Image.id < last_id)))
    return list(session.scalars(query))


def public_gallery(session: Session, entity_type: str, entity_id: int) -> list[Image]:
    """A listing's ready public images in RESO order: the cover first, then the gallery's order
    (position, then newest first). The RESO feed's Order and the compliance checks read it."""
    rows = session.scalars(
        select(Image)
        .where(
            Image.entity_type == entity_type,
            Image.entity_id == entity_id,
            Image.status == ImageStatus.READY,
            Image.permission == PUBLIC,
        )
        .order_by(Image.position.asc(), Image.id.desc())
    ).all()
    return sorted(rows, key=lambda image: not image.is_primary)  # stable: the rest keep their order


def images_in_status(session: Session, status: ImageStatus, limit: int) -> list[Image]:
    """Images in one status across every entity, newest first (support and admin views)."""
    return list(
        session.scalars(
            select(Image)
            .where(Image.status == status)
            .order_by(Image.id.desc())
            .limit(limit)
            .options(selectinload(Image.renditions), selectinload(Image.reuse_findings))
        )
    )
