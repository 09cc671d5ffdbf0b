"""`GET /api/v1/reso/Media`: the RESO Media feed of public listing media (services/syndication/reso.py;
docs/syndication.md). Anyone may read it: it holds only what the public view shows."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, jsonify, request

from services.syndication import reso

from .common import API_PREFIX
from .context import components, db_session
from .errors import ApiError
from .requests import ResoQuery, query

bp = Blueprint("reso", __name__, url_prefix=API_PREFIX)


@bp.get("/reso/Media")
def media_feed():
    params = query(ResoQuery)
    try:
        q = reso.parse(params.filter, params.orderby, params.top, params.skiptoken)
    except reso.ODataError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    c = components()
    records, last = reso.feed(db_session(), c.store, q, c.settings.disclosure_text)
    body: dict = {"@odata.context": request.base_url.rsplit("/", 1)[0] + "/$metadata#Media", "value": records}
    if last is not None:
        kept = {f"${name}": value for name in ("filter", "orderby", "top") if (value := getattr(params, name)) is not None}
        body["@odata.nextLink"] = request.base_url + "?" + urlencode({**kept, "$skiptoken": reso.skiptoken(last)})
    return jsonify(body)
