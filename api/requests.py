"""What the API accepts, declared once: each request body and each route's query parameters is a
pydantic model that validates the request (`parse`, `query`) and is the OpenAPI document's schema
(`body_schema`, `query_parameters`): a limit is written here and nowhere else.

Bodies are strict (JSON `"5"` is not a number, `1` is not `true`); query parameters are text and
are converted. A refusal is 400 `invalid_parameter` naming the field and what it must be."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from flask import request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from db.models import ImageStatus
from pipeline.specs import display_sizes, rendition_sizes
from services.entities import entity_types
from services.images.access import MAX_ENTITY_ID, MAX_IMAGE_ID
from services.images.manage import MAX_ALT_TEXT, MAX_POSITION
from services.images.uploads import DECLARABLE_TYPES
from services.infra.audit import Action
from services.syndication import media
from storage import MAX_PRESIGNED_URL_S

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)
MAX_LIST_LIMIT = 200
RENDITION_FORMATS = ("jpeg", "png", "webp", "avif")


def _entity_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = list(entity_types())  # the declared kinds when the document is built


def _declarable_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(DECLARABLE_TYPES)


def _rendition_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = ["original", *(size.name for size in rendition_sizes())]


class _NoNul(BaseModel):
    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """No text the database could refuse: PostgreSQL takes no NUL character in a string."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


class Body(_NoNul):
    model_config = ConfigDict(strict=True, extra="forbid")


class Query(_NoNul):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        """A time without an offset is UTC."""
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# -- bodies ------------------------------------------------------------------------------------
class DirectUploadRequest(Body):
    entity: str = Field(json_schema_extra=_entity_enum)
    entity_id: int = Field(ge=1, le=MAX_ENTITY_ID)
    content_type: str = Field(json_schema_extra=_declarable_enum, description="the file's type; anything else is 415")
    size: int = Field(ge=1, description="the file's length in bytes")
    filename: str | None = None
    callback_url: str | None = Field(
        None, json_schema_extra={"format": "uri"}, description="as on a form upload: the job's signed callback"
    )
    sha256: str | None = Field(
        None,
        pattern="^[0-9a-fA-F]{64}$",
        description="the file's SHA-256 (hex): the store then takes only these bytes, and completion reads "
        "just their first bytes instead of the whole file",
    )


def _one_of(values: tuple[str, ...]) -> Any:
    """A string from a declared vocabulary: checked, and listed as the OpenAPI schema's enum."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise ValueError(f"must be one of RESO's values ({', '.join(values[:4])}, ...)")
        return value

    return AfterValidator(check), WithJsonSchema({"type": "string", "enum": list(values)})


class MediaFields(Body):
    """An image's RESO media fields (services/syndication/media.py; docs/syndication.md)."""

    category: Annotated[str | None, *_one_of(media.CATEGORIES)] = Field(None, description="RESO MediaCategory")
    image_of: Annotated[str | None, *_one_of(media.IMAGE_OF)] = Field(None, description="RESO ImageOf")
    caption: str | None = Field(None, max_length=media.MAX_CAPTION, description="RESO ShortDescription")
    description: str | None = Field(None, max_length=media.MAX_DESCRIPTION, description="RESO LongDescription")
    permission: Annotated[str | None, *_one_of(media.PERMISSIONS)] = Field(
        None, description="RESO Permission; only Public images are in the public view and the RESO feed"
    )
    alteration: list[Annotated[str, *_one_of(media.ALTERATIONS)]] | None = Field(
        None, max_length=len(media.ALTERATIONS), description='RESO MediaAlteration, a set ([] or ["None"]: unaltered)'
    )
    original_of: int | None = Field(None, ge=1, le=MAX_IMAGE_ID, description="an altered image's unaltered original")


class ImportItem(MediaFields):
    url: str = Field(min_length=1, max_length=2048, json_schema_extra={"format": "uri"}, description="http(s), port 80 or 443")


class ImportRequest(Body):
    items: list[ImportItem] = Field(min_length=1, max_length=200, description="at most IMPORT_MAX_URLS")
    callback_url: str | None = Field(
        None, json_schema_extra={"format": "uri"}, description="as on a form upload: the job's signed callback"
    )


class ImagePatch(MediaFields):
    position: int = Field(None, ge=0, le=MAX_POSITION, description="gallery order")  # type: ignore[assignment]
    is_primary: bool = Field(None, description="true: this image is the listing's cover")  # type: ignore[assignment]
    alt_text: str | None = Field(None, max_length=MAX_ALT_TEXT)


class ScanRequest(Body):
    dry_run: bool = Field(True, description="false: delete the orphans found")
    entity: str = Field(None, json_schema_extra=_entity_enum)  # type: ignore[assignment]
    entity_id: int = Field(None, ge=1, le=MAX_ENTITY_ID)  # type: ignore[assignment]


class TakedownRequest(Body):
    reason: str = Field(..., min_length=1, max_length=1000, description="why (kept with the blocklist entry and the audit row)")


def _rendition_names(schema: dict[str, Any]) -> None:
    schema["enum"] = [size.name for size in display_sizes()]


class RumLoad(Body):
    rendition: str = Field(json_schema_extra=_rendition_names, description="the rendition the browser chose")
    format: Literal["jpeg", "png", "webp", "avif"]
    context: Literal["list", "grid", "detail"] = Field(description="where the photo was shown (web/imagepipe.js SIZES)")
    load_ms: float = Field(ge=0, description="request start to response end (Resource Timing); clamped to 120 s")
    bytes: int = Field(0, ge=0, description="transfer or encoded body size, when the browser exposes it; clamped")
    viewport: int = Field(ge=0, description="the viewport's width in CSS px; clamped")

    @field_validator("rendition")
    @classmethod
    def _declared(cls, value: str) -> str:
        names = [size.name for size in display_sizes()]
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value


class RumLcp(Body):
    rendition: str = Field(json_schema_extra=_rendition_names)
    format: Literal["jpeg", "png", "webp", "avif"]
    context: Literal["list", "grid", "detail"]
    ms: float = Field(ge=0, description="the LCP entry's render (or load) time; clamped to 120 s")

    _declared = field_validator("rendition")(RumLoad._declared.__func__)  # type: ignore[attr-defined]


class RumBeacon(Body):
    loads: list[RumLoad] = Field(max_length=50, description="photos loaded since the last beacon")
    lcp: RumLcp | None = Field(None, description="the page's Largest Contentful Paint, when it was one of our photos")


def media_per_file(text: str | None, files: int) -> list[dict[str, Any]]:
    """An upload form's `media` field: a JSON array with one object of media fields per file, in
    the files' order (or one object for every file); none: no fields."""
    if not text:
        return [{} for _ in range(files)]
    try:
        data = json.loads(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", "media must be JSON: an array with one object per file") from None
    if isinstance(data, dict):
        data = [data] * files
    if not isinstance(data, list) or len(data) != files:
        raise ApiError(400, "invalid_parameter", f"media must be an array with one object per file ({files})")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(parse(MediaFields, item).model_dump(exclude_unset=True))
        except ApiError as exc:
            raise ApiError(400, "invalid_parameter", f"media[{i}]: {exc.message}") from None
    return out


# -- query parameters --------------------------------------------------------------------------
class GalleryQuery(Query):
    limit: int = Field(50, ge=1, le=MAX_LIST_LIMIT, description="page size")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class SignedUrlQuery(Query):
    rendition: str = Field("original", json_schema_extra=_rendition_enum, description="default original")
    format: Literal["jpeg", "png", "webp", "avif"] | None = Field(None, description="for a rendition")
    expires_in: int = Field(300, ge=1, le=MAX_PRESIGNED_URL_S, description="seconds, default 300")


class AdminImagesQuery(Query):
    status: ImageStatus = Field(ImageStatus.FAILED, description="default failed")
    limit: int = Field(50, ge=1, le=MAX_LIST_LIMIT, description="page size")


class ReuseQuery(Query):
    since: datetime | None = Field(None, description="findings recorded at or after this time (RFC 3339)")
    after_id: int | None = Field(None, ge=0, description="page on: the last id of the previous page")
    limit: int = Field(100, ge=1, le=1000, description="page size")


class BlocklistQuery(Query):
    after_id: int | None = Field(None, ge=0, description="page on: the last id of the previous page")
    limit: int = Field(100, ge=1, le=1000, description="page size")


class AuditQuery(Query):
    since: datetime | None = Field(None, description="rows at or after this time (RFC 3339)")
    until: datetime | None = Field(None, description="rows before this time")
    action: Action | None = Field(None, description="one action")
    actor: str | None = Field(None, max_length=100, description="user:<id> or cli:<login>")
    image_id: int | None = Field(None, ge=1, le=MAX_IMAGE_ID)
    entity: str | None = Field(None, json_schema_extra=_entity_enum)
    entity_id: int | None = Field(None, ge=1, le=MAX_ENTITY_ID)
    before_id: int | None = Field(None, ge=1, description="page on: the last id of the previous page (newest first)")
    limit: int = Field(100, ge=1, le=1000, description="page size")


class StatsQuery(Query):
    source: Literal["database", "bucket"] = Field("database", description="bucket: recount from a listing of the bucket (slow)")
    days: int = Field(30, ge=1, le=400, description="the egress window: the last this many days (UTC, today included)")


def _profile_enum(schema: dict[str, Any]) -> None:
    from services.syndication.compliance import profile_names

    schema["enum"] = profile_names()


class ComplianceQuery(Query):
    profile: str | None = Field(None, json_schema_extra=_profile_enum, description="default COMPLIANCE_PROFILE")


class ResoQuery(Query):
    """OData system query options (their names carry a `$` on the wire: $filter, $orderby ...)."""

    filter: str | None = Field(
        None, alias="$filter", max_length=1000, description="e.g. ModificationTimestamp gt 2026-01-01T00:00:00Z"
    )
    orderby: str | None = Field(None, alias="$orderby", max_length=100, description="ModificationTimestamp asc|desc")
    top: int | None = Field(None, alias="$top", ge=1, le=200, description="page size (default 100)")
    skiptoken: str | None = Field(None, alias="$skiptoken", max_length=100, description="from @odata.nextLink")


# -- validating --------------------------------------------------------------------------------
def _message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown field {field}")
        elif error["type"] == "missing":
            problems.append(f"{field} is required")
        else:
            problems.append(f"{field}: {error['msg'][0].lower()}{error['msg'][1:]}")
    return "; ".join(problems)


def parse(model: type[M], data: Any) -> M:
    """A request body as `model` (400 invalid_json when it is not an object)."""
    if not isinstance(data, Mapping):
        raise ApiError(400, "invalid_json", "send a JSON object with Content-Type: application/json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_parameter", _message(exc)) from None


def json_body(model: type[M], *, optional: bool = False) -> M:
    """The request's JSON body as `model`; `optional`: an empty body is the model's defaults."""
    if optional and not request.content_length:
        return model()
    return parse(model, request.get_json(silent=True))


def query(model: type[M]) -> M:
    """The request's query parameters as `model`."""
    try:
        wire = [f.alias or name for name, f in model.model_fields.items()]  # OData's `$filter` ...
        return model.model_validate({name: request.args.get(name) for name in wire if name in request.args})
    except ValidationError as exc:
        raise ApiError(400, "invalid_parameter", _message(exc)) from None


# -- the OpenAPI document's side ---------------------------------------------------------------
def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """pydantic's schema with its $defs put in place and titles dropped (OpenAPI components keep
    their own names)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"].startswith("#/$defs/"):
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[1]]), **siblings})
            return {k: walk(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _nullable_optional(schema: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Fields that default to None only to mean 'absent' (a PATCH's) are not nullable in JSON."""
    for name, field in model.model_fields.items():
        prop = schema.get("properties", {}).get(name)
        if prop is None or field.default is not None:
            continue
        prop.pop("default", None)
        if "anyOf" in prop and "None" not in str(field.annotation):
            variants = [v for v in prop.pop("anyOf") if v.get("type") != "null"]
            prop.update(variants[0] if len(variants) == 1 else {"anyOf": variants})
    return schema


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = _nullable_optional(_inline(model.model_json_schema()), model)
    schema["additionalProperties"] = False
    return schema


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = _nullable_optional(_inline(model.model_json_schema()), model)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", "")
        if "anyOf" in prop:  # optional: the parameter is simply left out
            variants = [v for v in prop.pop("anyOf") if v.get("type") != "null"]
            prop.update(variants[0] if len(variants) == 1 else {"anyOf": variants})
        out.append({"name": name, "in": "query", "required": name in required, "schema": prop, "description": description})
    return out
