"""Who may act on what: the one place that decides it.

Writing a listing (uploading to it, ordering it, choosing its cover, editing alt text,
deleting, signing originals, following its jobs) needs a token that grants the listing's entity
(`Principal.may_write`); an image's uploader keeps rights over it only while their token still
grants its entity. Reading a gallery is public: anyone sees its ready images in their public
view. Callers answer 404 for None, so nobody learns what exists beyond what is public.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Image, ImageStatus, Job, Upload
from services.infra.tokens import Principal
from services.syndication.media import is_public

# The database's id columns: a larger id cannot name anything (and must not reach the driver).
MAX_IMAGE_ID = 2**31 - 1
MAX_ENTITY_ID = 2**63 - 1


def may_write(who: Principal | None, entity_type: str, entity_id: int) -> bool:
    return who is not None and who.may_write(entity_type, entity_id)


def image_for(session: Session, image_id: int, who: Principal, *, deleting_too: bool = False) -> Image | None:
    """The image if `who` may change it and it is not being deleted (unless `deleting_too`)."""
    if not 1 <= image_id <= MAX_IMAGE_ID:
        return None
    image = session.get(Image, image_id)
    if image is None or (image.status == ImageStatus.DELETING and not deleting_too):
        return None
    return image if may_write(who, image.entity_type, image.entity_id) else None


def readable_image(session: Session, image_id: int, who: Principal | None) -> tuple[Image, bool] | None:
    """The image and whether `who` sees its full (writer's) view; anyone else sees a ready public
    image's public view, and nothing of an image that is not ready or not public (RESO Permission)."""
    if not 1 <= image_id <= MAX_IMAGE_ID:
        return None
    image = session.scalars(select(Image).where(Image.id == image_id).options(selectinload(Image.renditions))).first()
    if image is None or image.status == ImageStatus.DELETING:
        return None
    full = may_write(who, image.entity_type, image.entity_id)
    public = image.status == ImageStatus.READY and is_public(image.permission)
    return (image, full) if full or public else None


def job_for(session: Session, job_id: str, who: Principal) -> Job | None:
    job = session.scalars(
        select(Job).where(Job.id == job_id).options(selectinload(Job.images).selectinload(Image.renditions))
    ).first()
    return job if job is not None and may_write(who, job.entity_type, job.entity_id) else None


def upload_for(session: Session, upload_id: str, who: Principal) -> Upload | None:
    """Locked for the rest of the transaction: two concurrent completions make one job."""
    upload = session.scalars(select(Upload).where(Upload.id == upload_id).with_for_update()).first()
    return upload if upload is not None and may_write(who, upload.entity_type, upload.entity_id) else None
