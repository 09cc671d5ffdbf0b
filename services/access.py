"""Who may act on what: the one place that decides it. Callers answer 404 for None, so nobody
learns that another user's image, job or upload exists."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Image, ImageStatus, Job, Upload

from .tokens import Principal


def may_act_for(who: Principal, owner_id: int | None) -> bool:
    return who.is_admin or (owner_id is not None and owner_id == who.user_id)


def image_for(session: Session, image_id: int, who: Principal, *, deleting_too: bool = False) -> Image | None:
    """The image if `who` may change it (its uploader or an admin) and it is not being deleted
    (unless `deleting_too`)."""
    image = session.get(Image, image_id)
    if image is None or (image.status == ImageStatus.DELETING and not deleting_too):
        return None
    return image if may_act_for(who, image.uploader_id) else None


def job_for(session: Session, job_id: str, who: Principal) -> Job | None:
    job = session.scalars(
        select(Job).where(Job.id == job_id).options(selectinload(Job.images).selectinload(Image.renditions))
    ).first()
    return job if job is not None and may_act_for(who, job.user_id) else None


def upload_for(session: Session, upload_id: str, who: Principal) -> Upload | None:
    """Locked for the rest of the transaction: two concurrent completions make one job."""
    upload = session.scalars(select(Upload).where(Upload.id == upload_id).with_for_update()).first()
    return upload if upload is not None and may_act_for(who, upload.user_id) else None
