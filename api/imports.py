"""`POST /api/v1/{entity}/{id}/imports`: images from URLs, with their RESO media fields; a job like
an upload's. The worker downloads each URL through the SSRF-safe fetcher (services/infra/fetch.py):
a URL that cannot be fetched fails its image with a fetch_* code."""

from __future__ import annotations

from flask import Blueprint, g

from services.infra import fetch
from services.syndication.fields import check_originals
from services.syndication.imports import create_imports

from .auth import login_required
from .common import (
    API_PREFIX,
    answer_ingest,
    callback_url,
    entity_id_in_path,
    entity_in_path,
    grants,
    rate_limit,
    writable,
)
from .context import components, db_session
from .errors import ApiError
from .requests import ImportRequest, json_body

bp = Blueprint("imports", __name__, url_prefix=API_PREFIX)


@bp.post("/<entity>/<int:entity_id>/imports")
@login_required
def import_images(entity: str, entity_id: int):
    entity, entity_id = entity_in_path(entity), entity_id_in_path(entity_id)
    c, session = components(), db_session()
    writable(entity, entity_id)
    body = json_body(ImportRequest)
    if len(body.items) > c.settings.import_max_urls:
        raise ApiError(400, "too_many_files", f"at most {c.settings.import_max_urls} URLs per import (IMPORT_MAX_URLS)")
    allowed = fetch.networks(c.settings.fetch_allowed_networks)
    for n, item in enumerate(body.items):
        try:
            fetch.check_url(item.url, allowed)
        except fetch.FetchError as exc:
            raise ApiError(400, "invalid_url", f"items[{n}].url: {exc.message}") from None
    callback = callback_url(body.callback_url)
    check_originals(session, entity, entity_id, [i.original_of for i in body.items if i.original_of])
    rate_limit(len(body.items))
    items = [(i.url, i.model_dump(exclude_unset=True, exclude={"url"})) for i in body.items]
    result = create_imports(
        session,
        entity_type=entity,
        entity_id=entity_id,
        user_id=g.principal.user_id,
        items=items,
        callback_url=callback,
        grants=grants(),
    )
    return answer_ingest(session, c.queue, entity, result)
