"""/api/v1 images: one image (read, change, delete, a signed URL) and a listing's gallery."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from db.models import ImageStatus
from services.images import access, manage
from services.images.queries import list_images
from services.images.serialisers import image_json, iso
from services.syndication import compliance, fields, media

from .auth import login_required, optional_login
from .common import API_PREFIX, actor, entity_id_in_path, entity_in_path, owned, writable
from .context import AfterCommit, components, db_session
from .errors import ApiError
from .requests import ComplianceQuery, GalleryQuery, ImagePatch, SignedUrlQuery, json_body, query

bp = Blueprint("images", __name__, url_prefix=API_PREFIX)


@bp.get("/images/<int:image_id>")
@optional_login
def image(image_id: int):
    found = access.readable_image(db_session(), image_id, g.principal)
    if found is None:
        raise ApiError(404, "image_not_found", f"no image {image_id}")
    img, full = found
    return jsonify(image_json(img, components().store, full=full, disclosure=components().settings.disclosure_text))


@bp.patch("/images/<int:image_id>")
@login_required
def patch_image(image_id: int):
    changes = json_body(ImagePatch).model_dump(exclude_unset=True)
    media_changes = {name: changes.pop(name) for name in media.FIELDS if name in changes}
    admin = actor() if g.principal.is_admin else None
    session, image = db_session(), owned(image_id)
    fields.apply(session, image, media_changes)  # MediaFieldError: 400 invalid_parameter (api/errors.py)
    img = manage.update_image(session, image, **changes, admin=admin)
    c = components()
    return jsonify(image_json(img, c.store, full=True, disclosure=c.settings.disclosure_text))


@bp.delete("/images/<int:image_id>")
@login_required
def delete_image(image_id: int):
    c = components()
    image = owned(image_id, deleting_too=True)
    if image.status == ImageStatus.DELETING:
        return _deleting(image_id)  # already being deleted: still pending
    deletion = manage.delete_image(db_session(), c.store, c.queue, image, settings=c.settings, actor=actor())
    return AfterCommit(lambda: ("", 204) if deletion.done else _deleting(image_id))


def _deleting(image_id: int):
    resp = jsonify({"id": image_id, "status": ImageStatus.DELETING})
    resp.status_code = 202
    return resp


@bp.get("/images/<int:image_id>/url")
@login_required
def signed_image_url(image_id: int):
    image = owned(image_id)
    c = components()
    params = query(SignedUrlQuery)
    rendition, fmt = params.rendition, params.format
    if rendition == "original":
        key = image.s3_key or image.staging_key
        if not key or image.status == ImageStatus.LEGACY:
            raise ApiError(409, "original_not_available", "this image has no original in the store (a legacy image)")
    else:
        matches = [r for r in image.renditions if r.name == rendition and (fmt is None or r.format == fmt)]
        if not matches:
            raise ApiError(404, "rendition_not_found", f"image {image_id} has no {rendition}{' ' + fmt if fmt else ''} rendition")
        # Without a format, the universally decodable one (JPEG, or PNG for transparent images).
        key = sorted(matches, key=lambda r: r.format not in ("jpeg", "png"))[0].key
    url, expires_at = manage.signed_url(c.settings, c.store, key, params.expires_in)
    return jsonify({"url": url, "expires_at": iso(expires_at), "rendition": rendition})


@bp.get("/<entity>/<int:entity_id>/images")
@optional_login
def entity_images(entity: str, entity_id: int):
    entity = entity_in_path(entity)
    if not 0 <= entity_id <= access.MAX_ENTITY_ID:
        raise ApiError(400, "invalid_parameter", f"entity_id must be an integer from 0 to {access.MAX_ENTITY_ID}")
    full = access.may_write(g.principal, entity, entity_id)
    params = query(GalleryQuery)
    after = None
    if params.cursor:
        try:
            position, _, last_id = params.cursor.partition(".")
            after = (int(position), int(last_id))
            if not (0 <= after[0] <= 2**31 - 1 and 0 <= after[1] <= access.MAX_IMAGE_ID):
                raise ValueError(params.cursor)
        except ValueError:
            raise ApiError(400, "invalid_parameter", "cursor must be a next_cursor value from a previous page") from None
    images = list_images(db_session(), entity, entity_id, limit=params.limit, after=after, ready_only=not full)
    c = components()
    store = c.store
    last = images[-1] if len(images) == params.limit else None
    return jsonify(
        {
            "entity_type": entity,
            "entity_id": entity_id,
            "images": [image_json(i, store, full=full, disclosure=c.settings.disclosure_text) for i in images],
            "next_cursor": f"{last.position or 0}.{last.id}" if last else None,
            # For the listing's writers: the MLS rules' warnings over the whole gallery (COMPLIANCE_PROFILE).
            **({"compliance": _compliance(entity, entity_id, c.settings.compliance_profile)} if full else {}),
        }
    )


def _compliance(entity: str, entity_id: int, name: str) -> dict:
    chosen = compliance.profile(name)
    if chosen is None:
        raise ApiError(400, "invalid_parameter", f"profile must be one of {', '.join(compliance.profile_names())}")
    return compliance.check(db_session(), entity, entity_id, chosen)


@bp.get("/<entity>/<int:entity_id>/compliance")
@login_required
def listing_compliance(entity: str, entity_id: int):
    entity, entity_id = entity_in_path(entity), entity_id_in_path(entity_id)
    writable(entity, entity_id)
    params = query(ComplianceQuery)
    return jsonify(_compliance(entity, entity_id, params.profile or components().settings.compliance_profile))
