"""The API contract, OpenAPI 3.1, served at /api/v1/openapi.json and rendered at /api/docs.

Schemas are strict (`additionalProperties: false`): the test suite validates every JSON
response it receives against them, so the document cannot drift from the code unnoticed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, send_from_directory

from db.models import CallbackState, ImageStatus, JobStatus, ScanStatus
from pipeline.specs import rendition_sizes
from services.entities import entity_types
from services.images.access import MAX_ENTITY_ID
from services.images.serialisers import PUBLIC_FIELDS
from services.infra.audit import Action
from services.infra.settings import Settings
from services.syndication import media
from services.syndication.compliance import profile_names

from .context import WEB_DIR
from .requests import (
    AdminImagesQuery,
    AuditQuery,
    BlocklistQuery,
    ComplianceQuery,
    DirectUploadRequest,
    GalleryQuery,
    ImagePatch,
    ImportRequest,
    MediaFields,
    ResoQuery,
    ReuseQuery,
    RumBeacon,
    ScanRequest,
    SignedUrlQuery,
    StatsQuery,
    TakedownRequest,
    body_schema,
    query_parameters,
)

bp = Blueprint("openapi", __name__)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict, optional: dict | None = None) -> dict:
    props = {**required, **(optional or {})}
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
DISTANCE = {"type": "integer", "minimum": 0, "maximum": 256, "description": "PDQ Hamming distance (of 256 bits)"}
TIME = {"type": "string", "format": "date-time"}
IMAGE_STATUS = {"type": "string", "enum": [s.value for s in ImageStatus]}
JOB_STATUS = {"type": "string", "enum": [s.value for s in JobStatus]}
CALLBACK_STATE = {"type": "string", "enum": [s.value for s in CallbackState]}


def _enum(values: tuple[str, ...]) -> dict:
    return {"type": "string", "enum": list(values)}


def _media_properties() -> dict:
    """An image's RESO media fields (services/syndication/media.py)."""
    return {
        "category": _nullable(_enum(media.CATEGORIES)),
        "image_of": _nullable(_enum(media.IMAGE_OF)),
        "caption": _nullable(STR),
        "description": _nullable(STR),
        "permission": _enum(media.PERMISSIONS),
        "alteration": {"type": "array", "items": _enum(media.ALTERATIONS)},
        "original_of": _nullable(INT),
    }


def _schemas() -> dict:
    """The components, built when the document is: the entity types and rendition sizes are read
    from their declarations (services/entities.py, pipeline/specs.py) at that moment."""
    schemas: dict[str, Any] = {
        "Error": _obj({"error": _obj({"code": STR, "message": STR})}),
        "ErrorDetail": _nullable(_obj({"code": STR, "message": STR})),
        "Rendition": _obj({"url": STR, "width": INT, "height": INT, "bytes": INT, "content_type": STR}),
        "Image": _obj(
            {
                "id": INT,
                "entity_type": {"type": "string", "enum": list(entity_types())},
                "entity_id": INT,
                "status": IMAGE_STATUS,
                "filename": _nullable(STR),
                "width": _nullable(INT),
                "height": _nullable(INT),
                "file_size": _nullable(INT),
                "mime_type": _nullable({"type": "string", "description": "the format read from the bytes"}),
                "declared_content_type": _nullable(STR),
                "content_type_mismatch": BOOL,
                "sha256": _nullable(STR),
                "has_alpha": _nullable(BOOL),
                "animated": BOOL,
                "placeholder": _nullable(
                    _obj({"blurhash": STR, "dominant_color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}})
                ),
                "position": INT,
                "is_primary": BOOL,
                "alt_text": _nullable(STR),
                "uploader_id": _nullable(INT),
                "renditions": {
                    "type": "object",
                    "description": "by size name, then by format (jpeg or png, webp, avif when enabled)",
                    "propertyNames": {"enum": [r.name for r in rendition_sizes()]},
                    "additionalProperties": {
                        "type": "object",
                        "propertyNames": {"enum": ["jpeg", "png", "webp", "avif"]},
                        "additionalProperties": _ref("Rendition"),
                    },
                },
                "created_at": _nullable(TIME),
                "processed_at": _nullable(TIME),
                "error": _ref("ErrorDetail"),
                **_media_properties(),
                "disclosure": _nullable(_ref("Disclosure")),
                "reuse": {
                    "type": "array",
                    "description": "photos of other listings this one matches (a possibly lifted photo; docs/operations.md)",
                    "items": _ref("ReuseMatch"),
                },
            },
            {"legacy_url": STR, "source_url": _nullable({"type": "string", "description": "imported from"})},
        ),
        "Disclosure": _obj(
            {
                "text": {"type": "string", "description": "DISCLOSURE_TEXT: show it beside the photo"},
                "alteration": {"type": "array", "items": _enum(media.ALTERATIONS)},
                "original_id": _nullable(INT),
                "original_url": _nullable({"type": "string", "description": "the unaltered original's large rendition"}),
            }
        ),
        # any kind a row holds (a kind declared since, or one retired, may still be on an old row)
        "EntityRef": _obj({"type": STR, "id": INT}),
        "ReuseMatch": _obj({"image_id": INT, "entity": _ref("EntityRef"), "distance": DISTANCE}),
        "ReuseFindings": _obj(
            {
                "findings": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": INT,
                            "image_id": INT,
                            "entity": _ref("EntityRef"),
                            "uploader_id": _nullable(INT),
                            "other_image_id": INT,
                            "other_entity": _ref("EntityRef"),
                            "distance": DISTANCE,
                            "created_at": _nullable(TIME),
                        }
                    ),
                },
                "next_after_id": _nullable(INT),
            }
        ),
        "TakedownRequest": body_schema(TakedownRequest),
        "RumBeacon": body_schema(RumBeacon),
        "BlocklistEntry": _obj(
            {
                "id": INT,
                "pdq": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "quality": INT,
                "reason": STR,
                "source_image_id": _nullable(INT),
                "entity": _nullable(_ref("EntityRef")),
                "created_by": STR,
                "created_at": _nullable(TIME),
            }
        ),
        "Takedown": _obj(
            {
                "image_id": INT,
                "status": {"type": "string", "enum": ["deleted", "deleting"]},
                "blocklist_entry": _nullable(_ref("BlocklistEntry")),
                "not_blocklisted": _nullable({"type": "string", "description": "why no entry was made, or why it cannot match"}),
                "copies": {
                    "type": "array",
                    "description": "other images within the blocklist distance (not deleted: each is its own decision)",
                    "items": _obj({"image_id": INT, "distance": DISTANCE, "mirrored": BOOL}),
                },
            }
        ),
        "Blocklist": _obj({"entries": {"type": "array", "items": _ref("BlocklistEntry")}, "next_after_id": _nullable(INT)}),
        "AuditLog": _obj(
            {
                "entries": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": INT,
                            "at": _nullable(TIME),
                            "actor": STR,
                            "action": {"type": "string", "enum": [a.value for a in Action]},
                            "image_id": _nullable(INT),
                            "entity": _nullable(_obj({"type": STR, "id": _nullable(INT)})),
                            "request_id": _nullable(STR),
                            "detail": _nullable({"type": "object"}),
                        }
                    ),
                },
                "next_before_id": _nullable(INT),
            }
        ),
        "PublicImage": None,  # filled in below: the public fields of Image, status always ready
        "ImageView": {
            "oneOf": [_ref("Image"), _ref("PublicImage")],
            "description": "the full view for the entity's writers and admins, the public view for anyone else",
        },
        "JobImage": _obj({"id": INT, "status": IMAGE_STATUS, "filename": _nullable(STR), "error": _ref("ErrorDetail")}),
        "Job": _obj(
            {
                "id": STR,
                "status": JOB_STATUS,
                "status_url": STR,
                "entity_type": STR,
                "entity_id": INT,
                "created_at": _nullable(TIME),
                "total": INT,
                "succeeded": INT,
                "failed": INT,
                "pending": {"type": "integer", "description": "pending or processing"},
                "images": {"type": "array", "items": _ref("JobImage")},
                "callback": _nullable(
                    _obj({"url": STR, "state": CALLBACK_STATE, "attempts": INT, "delivered_at": _nullable(TIME)})
                ),
            }
        ),
        "UploadAccepted": _obj(
            {
                "job": _obj({"id": STR, "status": JOB_STATUS, "status_url": STR}),
                "images": {
                    "type": "array",
                    "items": _obj(
                        {"id": INT, "status": IMAGE_STATUS, "filename": _nullable(STR)},
                        {"duplicate_of": {"type": "integer", "description": "these bytes are already this image of the entity"}},
                    ),
                },
            },
            {"rejected": {"type": "array", "items": _obj({"filename": _nullable(STR), "error": _ref("ErrorDetail")})}},
        ),
        "DirectUploadRequest": body_schema(DirectUploadRequest),
        "DirectUpload": _obj(
            {
                "upload_id": STR,
                "method": {"const": "POST"},
                "url": STR,
                "fields": {
                    "type": "object",
                    "additionalProperties": STR,
                    "description": "send every field, then the file as `file`, as multipart/form-data",
                },
                "max_bytes": INT,
                "expires_at": TIME,
                "complete_url": STR,
            }
        ),
        "ImagePatch": body_schema(ImagePatch),
        "MediaFields": body_schema(MediaFields),
        "ImportRequest": body_schema(ImportRequest),
        "Deleting": _obj({"id": INT, "status": {"const": ImageStatus.DELETING.value}}),
        "SignedUrl": _obj({"url": STR, "expires_at": TIME, "rendition": STR}),
        "Listing": _obj(
            {
                "entity_type": STR,
                "entity_id": INT,
                "images": {"type": "array", "items": _ref("ImageView")},
                "next_cursor": _nullable(STR),
            },
            {"compliance": _ref("Compliance")},
        ),
        "Compliance": _obj(
            {
                "profile": {"type": "string", "enum": profile_names()},
                "ok": BOOL,
                "warnings": {
                    "type": "array",
                    "items": _obj(
                        {
                            "code": {
                                "type": "string",
                                "enum": [
                                    "too_small",
                                    "file_too_large",
                                    "aspect",
                                    "too_many",
                                    "primary_not_photo",
                                    "primary_unclassified",
                                    "primary_not_exterior",
                                    "primary_altered",
                                    "altered_without_original",
                                    "original_not_public",
                                    "original_not_adjacent",
                                ],
                            },
                            "image_id": _nullable(INT),
                            "message": STR,
                        }
                    ),
                },
            }
        ),
        "AdminImages": _obj({"status": IMAGE_STATUS, "images": {"type": "array", "items": _ref("Image")}}),
        "Count": _obj({"objects": INT, "bytes": INT}),
        "StorageStats": _obj(
            {
                "source": {"type": "string", "enum": ["database", "bucket"]},
                "totals": _ref("Count"),
                "entities": {
                    "type": "object",
                    "description": "by entity type",
                    "additionalProperties": _obj(
                        {"originals": _ref("Count"), "renditions": _ref("Count"), "objects": INT, "bytes": INT}
                    ),
                },
                "renditions": {
                    "type": "object",
                    "description": "by rendition name, then format",
                    "additionalProperties": {"type": "object", "additionalProperties": _ref("Count")},
                },
                "added_per_day": {
                    "type": "array",
                    "description": "the last 30 days, oldest first (UTC)",
                    "items": _obj({"date": {"type": "string", "format": "date"}, "objects": INT, "bytes": INT}),
                },
                "images_by_status": {
                    "type": "object",
                    "propertyNames": {"enum": [s.value for s in ImageStatus]},
                    "additionalProperties": INT,
                },
                "last_orphan_scan": _nullable(
                    _obj(
                        {
                            "id": STR,
                            "finished_at": _nullable(TIME),
                            "dry_run": BOOL,
                            "orphans": _ref("Count"),
                            "missing": _obj({"originals": INT, "renditions": INT}),
                        }
                    )
                ),
                "egress": _ref("Egress"),
                "cost": _ref("Cost"),
                "duration_ms": {"type": "number"},
            },
            {
                "staging": _ref("Count"),
                "outside_layout": _ref("Count"),
                "difference": {"type": "object", "description": "bucket minus database"},
            },
        ),
        "Served": _obj({"requests": INT, "bytes": INT}),
        "AccessLogs": _obj({"files": INT, "lines": INT, "malformed_lines": INT, "last_ingested_at": _nullable(TIME)}),
        "Egress": {
            "description": "bytes sent and requests from the ingested access logs (S3 server access logs, CloudFront"
            " standard logs) over the last `days` days",
            "oneOf": [
                _obj({"known": {"const": False}, "days": INT, "logs": _ref("AccessLogs"), "why": STR}),
                _obj(
                    {
                        "known": {"const": True},
                        "days": INT,
                        "first_day_with_requests": _nullable({"type": "string", "format": "date"}),
                        "totals": _ref("Served"),
                        "sources": {
                            "type": "object",
                            "propertyNames": {"enum": ["s3", "cloudfront"]},
                            "additionalProperties": _obj(
                                {"requests": INT, "bytes": INT}, {"cache_hit_ratio": _nullable({"type": "number"})}
                            ),
                        },
                        "per_day": {
                            "type": "array",
                            "items": _obj({"date": {"type": "string", "format": "date"}, "requests": INT, "bytes": INT}),
                        },
                        "entities": {"type": "object", "additionalProperties": _ref("Served")},
                        "renditions": {
                            "type": "object",
                            "description": "by rendition name (`original` for originals), then format",
                            "additionalProperties": {"type": "object", "additionalProperties": _ref("Served")},
                        },
                        "never_served": {
                            "type": "array",
                            "description": "stored renditions (name and format) no request reached in the window",
                            "items": _obj({"rendition": STR, "format": STR, "objects": INT, "bytes": INT}),
                        },
                        "logs": _ref("AccessLogs"),
                    }
                ),
            ],
        },
        "Cost": _obj(
            {
                "currency": {"const": "USD"},
                "prices_as_of": STR,
                "prices": {"type": "object", "additionalProperties": {"type": "number"}},
                "stored_gb": _obj({"STANDARD": {"type": "number"}, "GLACIER_IR": {"type": "number"}}),
                "monthly": _obj(
                    {
                        k: {"type": "number"}
                        for k in ("originals_standard", "originals_archive", "renditions", "egress", "requests", "total")
                    }
                ),
                "per_rendition": {
                    "type": "object",
                    "additionalProperties": _obj(
                        {"stored_gb": {"type": "number"}, "egress_gb_month": {"type": "number"}, "usd_month": {"type": "number"}}
                    ),
                },
                "egress_scaled_from_days": _nullable(INT),
                "note": STR,
            }
        ),
        "Scan": _obj(
            {
                "id": STR,
                "status": {"type": "string", "enum": [s.value for s in ScanStatus]},
                "dry_run": BOOL,
                "scope": _nullable(_obj({"entity_type": STR, "entity_id": INT})),
                "grace_s": INT,
                "requested_by": _nullable(STR),
                "created_at": _nullable(TIME),
                "started_at": _nullable(TIME),
                "finished_at": _nullable(TIME),
                "progress": _obj({"objects_listed": INT, "bytes_listed": INT, "expected_objects": _nullable(INT)}),
                "counts": _nullable(
                    {
                        "type": "object",
                        "description": "listed, orphans (by kind), young_unreferenced, deleted,"
                        " delete_errors, missing originals/renditions, marked_missing, rerender_queued",
                    }
                ),
                "samples": _nullable(
                    {
                        "type": "object",
                        "description": "the first keys of each finding",
                        "additionalProperties": {"type": "array", "items": {"type": "object"}},
                    }
                ),
                "samples_capped_at": INT,
                "report_key": _nullable(STR),
                "error": _nullable(STR),
            }
        ),
        "ScanRequest": body_schema(ScanRequest),
        "Health": _obj({"status": {"const": "ok"}}),
        "Ready": _obj({"status": {"const": "ok"}, "checks": {"type": "object", "additionalProperties": STR}}),
        "NotReady": _obj(
            {
                "status": {"const": "unavailable"},
                "down": {"type": "array", "items": STR},
                "checks": {"type": "object", "additionalProperties": STR},
                "error": _obj({"code": {"const": "not_ready"}, "message": STR}),
            }
        ),
    }

    nullable_str = _nullable(STR)
    reso_url = _obj({"ImageSizeDescription": STR, "MediaURL": STR, "ImageWidth": INT, "ImageHeight": INT})
    schemas["ResoMedia"] = _obj(
        {
            "MediaKey": STR,
            "OriginatingSystemName": STR,
            "ResourceName": STR,
            "ResourceRecordKey": STR,
            "MediaCategory": _enum(media.CATEGORIES),
            "MediaType": _enum(("Jpeg", "Png")),
            "MediaStatus": _enum(media.MEDIA_STATUSES),
            "Order": INT,
            "PreferredPhotoYN": BOOL,
            "ImageOf": _nullable(_enum(media.IMAGE_OF)),
            "ShortDescription": nullable_str,
            "LongDescription": nullable_str,
            "Permission": {"type": "array", "items": _enum(media.PERMISSIONS)},
            "MediaAlteration": {"type": "array", "items": _enum(media.ALTERATIONS)},
            "MediaURL": nullable_str,
            "ImageWidth": _nullable(INT),
            "ImageHeight": _nullable(INT),
            "ImageSizeDescription": nullable_str,
            "MediaModificationTimestamp": _nullable(TIME),
            "ModificationTimestamp": _nullable(TIME),
            "Imagepipe_MediaURLs": {"type": "array", "items": reso_url},
            "Imagepipe_DisclosureText": nullable_str,
            "Imagepipe_OriginalMediaKey": nullable_str,
            "Imagepipe_OriginalMediaURL": nullable_str,
        }
    )
    schemas["ResoMediaPage"] = _obj(
        {"@odata.context": STR, "value": {"type": "array", "items": _ref("ResoMedia")}},
        {"@odata.nextLink": {"type": "string", "description": "the next page, when there is one"}},
    )
    schemas["PublicImage"] = _obj(
        {
            **{name: schemas["Image"]["properties"][name] for name in PUBLIC_FIELDS},
            "status": {"const": ImageStatus.READY.value},
        }
    )
    schemas["PublicImage"]["description"] = (
        "what anyone may see of a ready image: renditions, dimensions, placeholder, alt text, position, cover"
    )
    return schemas


def _json(schema_name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _errors(*statuses: int) -> dict:
    text = {
        400: "invalid request",
        401: "no or invalid bearer token",
        403: "not allowed",
        404: "not found (or not yours)",
        409: "conflict",
        413: "too large",
        415: "not a supported image format",
        429: "rate limited (Retry-After)",
        503: "a dependency is down (Retry-After)",
    }
    return {str(s): _json("Error", text[s]) for s in statuses}


def _path_param(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


SCAN_ID = _path_param("scan_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"})
ENTITY_ID = _path_param("entity_id", {"type": "integer", "minimum": 0, "maximum": MAX_ENTITY_ID})
IMAGE_ID = _path_param("image_id", {"type": "integer"})
AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
# The default prefix; a deployment that changes LEGACY_URL_PREFIX serves the same operation there.
LEGACY_PATH = Settings.model_fields["legacy_url_prefix"].default.rstrip("/") + "/{legacy_path}"
PUBLIC: list[dict[str, list[str]]] = [
    {"bearer": []},
    {},
]  # a token is optional: without one (or without a grant), the public view
ALWAYS = (401, 503)


def spec() -> dict:
    entity = _path_param("entity", {"type": "string", "enum": list(entity_types())})
    paths = {
        "/api/v1/{entity}/{entity_id}/images": {
            "parameters": [entity, ENTITY_ID],
            "post": {
                "summary": "Upload one or more images (a batch job)",
                "operationId": "upload",
                "security": AUTH,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                    "callback_url": {
                                        "type": "string",
                                        "format": "uri",
                                        "description": "POSTed the final job JSON, signed; allowed hosts only",
                                    },
                                    "media": {
                                        "type": "string",
                                        "contentMediaType": "application/json",
                                        "description": "RESO media fields (the MediaFields schema): a JSON array with"
                                        " one object per file, in order, or one object for every file",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json("UploadAccepted", "accepted; poll the job"),
                    **_errors(400, 403, 404, 413, 415, 429, *ALWAYS),
                },
            },
            "get": {
                "summary": "An entity's gallery, in order: every image but those being deleted for the entity's "
                "writers and admins, the public view of its ready images for anyone else",
                "operationId": "listImages",
                "security": PUBLIC,
                "parameters": query_parameters(GalleryQuery),
                "responses": {"200": _json("Listing", "images by position, then newest first"), **_errors(400, 404, *ALWAYS)},
            },
        },
        "/api/v1/{entity}/{entity_id}/images/{filename}": {
            "parameters": [entity, ENTITY_ID, _path_param("filename", {"type": "string", "maxLength": 255})],
            "put": {
                "summary": "Upload one image as the request body (its type in Content-Type; the filename is a label,"
                " never part of a key): the form upload's answers without multipart parsing (web/imagepipe.js uses it)",
                "operationId": "uploadImageRaw",
                "security": AUTH,
                "parameters": [
                    _query(
                        "callback_url",
                        {"type": "string", "format": "uri"},
                        "POSTed the final job JSON, signed; allowed hosts only",
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "image/*": {"schema": {"type": "string", "format": "binary"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "responses": {
                    "202": _json("UploadAccepted", "accepted; poll the job"),
                    **_errors(400, 403, 404, 413, 415, 429, *ALWAYS),
                },
            },
        },
        "/api/v1/uploads": {
            "post": {
                "summary": "Start a direct upload: a presigned POST to the store",
                "operationId": "createUpload",
                "security": AUTH,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("DirectUploadRequest")}}},
                "responses": {
                    "201": _json("DirectUpload", "POST the file there, then call complete_url"),
                    **_errors(400, 403, 404, 413, 415, 429, *ALWAYS),
                },
            }
        },
        "/api/v1/uploads/{upload_id}/complete": {
            "parameters": [_path_param("upload_id", STR)],
            "post": {
                "summary": "Finish a direct upload (idempotent)",
                "operationId": "completeUpload",
                "security": AUTH,
                "responses": {
                    "202": _json("UploadAccepted", "accepted; the same job every time"),
                    **_errors(404, 409, 413, 415, *ALWAYS),
                },
            },
        },
        "/api/v1/jobs/{job_id}": {
            "parameters": [_path_param("job_id", STR)],
            "get": {
                "summary": "A job's progress, from the database",
                "operationId": "getJob",
                "security": AUTH,
                "responses": {"200": _json("Job", "the job"), **_errors(404, *ALWAYS)},
            },
        },
        "/api/v1/images/{image_id}": {
            "parameters": [IMAGE_ID],
            "get": {
                "summary": "One image: the full view for the entity's writers and admins, the public view of a "
                "ready image for anyone else",
                "operationId": "getImage",
                "security": PUBLIC,
                "responses": {"200": _json("ImageView", "the image"), **_errors(404, *ALWAYS)},
            },
            "patch": {
                "summary": "Gallery order, cover, alt text, RESO media fields (the entity's writers and admins)",
                "operationId": "patchImage",
                "security": AUTH,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ImagePatch")}}},
                "responses": {"200": _json("Image", "the image as changed"), **_errors(400, 404, *ALWAYS)},
            },
            "delete": {
                "summary": "Delete the image and every object (the entity's writers and admins)",
                "operationId": "deleteImage",
                "security": AUTH,
                "responses": {
                    "204": {"description": "deleted"},
                    "202": _json("Deleting", "hidden now; a task finishes removing objects"),
                    **_errors(404, *ALWAYS),
                },
            },
        },
        "/api/v1/images/{image_id}/url": {
            "parameters": [IMAGE_ID],
            "get": {
                "summary": "A time-limited URL for the private original or a rendition",
                "operationId": "signedImageUrl",
                "security": AUTH,
                "parameters": query_parameters(SignedUrlQuery),
                "responses": {"200": _json("SignedUrl", "the URL"), **_errors(400, 404, 409, *ALWAYS)},
            },
        },
        "/api/v1/admin/images": {
            "get": {
                "summary": "Images in one status across all entities (admin)",
                "operationId": "adminImages",
                "security": AUTH,
                "parameters": query_parameters(AdminImagesQuery),
                "responses": {"200": _json("AdminImages", "the images"), **_errors(400, 403, *ALWAYS)},
            }
        },
        "/api/v1/admin/storage/stats": {
            "get": {
                "summary": "Storage statistics (admin): bytes and objects per entity type and rendition, images per status,"
                " bytes added per day, the last orphan scan",
                "operationId": "adminStorageStats",
                "security": AUTH,
                "parameters": query_parameters(StatsQuery),
                "responses": {"200": _json("StorageStats", "the figures"), **_errors(400, 403, *ALWAYS)},
            }
        },
        "/api/v1/admin/storage/cleanup-orphaned": {
            "post": {
                "summary": "Start an orphan scan, both ways (admin); a dry run unless dry_run is false",
                "operationId": "adminCleanupOrphaned",
                "security": AUTH,
                "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("ScanRequest")}}},
                "responses": {
                    "202": {**_json("Scan", "queued; follow the Location"), "headers": {"Location": {"schema": STR}}},
                    **_errors(400, 403, 404, 413, *ALWAYS),
                },
            }
        },
        "/api/v1/admin/storage/scans/{scan_id}": {
            "parameters": [SCAN_ID],
            "get": {
                "summary": "An orphan scan: progress, counts, the first keys of each finding (admin)",
                "operationId": "adminStorageScan",
                "security": AUTH,
                "responses": {"200": _json("Scan", "the scan"), **_errors(403, 404, *ALWAYS)},
            },
        },
        "/api/v1/admin/storage/scans/{scan_id}/report": {
            "parameters": [SCAN_ID],
            "get": {
                "summary": "A finished scan's complete report, JSON lines (admin)",
                "operationId": "adminStorageScanReport",
                "security": AUTH,
                "responses": {
                    "200": {"description": "one JSON object per finding", "content": {"application/x-ndjson": {"schema": STR}}},
                    **_errors(403, 404, 409, *ALWAYS),
                },
            },
        },
        "/api/v1/admin/reuse": {
            "get": {
                "summary": "Reuse findings, oldest first (admin): photos matching a photo of another listing their uploader"
                " could not write",
                "operationId": "adminReuse",
                "security": AUTH,
                "parameters": query_parameters(ReuseQuery),
                "responses": {"200": _json("ReuseFindings", "the findings"), **_errors(400, 403, *ALWAYS)},
            }
        },
        "/api/v1/admin/images/{image_id}/takedown": {
            "parameters": [IMAGE_ID],
            "post": {
                "summary": "Take an image down (admin): original and renditions deleted, CDN invalidated, its picture"
                " blocklisted, audited",
                "operationId": "adminTakedown",
                "security": AUTH,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TakedownRequest")}}},
                "responses": {"200": _json("Takedown", "taken down"), **_errors(400, 403, 404, 413, *ALWAYS)},
            },
        },
        "/api/v1/admin/blocklist": {
            "get": {
                "summary": "The takedown blocklist (admin)",
                "operationId": "adminBlocklist",
                "security": AUTH,
                "parameters": query_parameters(BlocklistQuery),
                "responses": {"200": _json("Blocklist", "the entries"), **_errors(400, 403, *ALWAYS)},
            }
        },
        "/api/v1/admin/blocklist/{entry_id}": {
            "parameters": [_path_param("entry_id", INT, "a blocklist entry")],
            "delete": {
                "summary": "Remove a blocklist entry (admin): the picture may be uploaded again",
                "operationId": "adminBlocklistRemove",
                "security": AUTH,
                "responses": {"204": {"description": "removed"}, **_errors(403, 404, *ALWAYS)},
            },
        },
        "/api/v1/admin/audit": {
            "get": {
                "summary": "The audit trail, newest first (admin): destructive and admin actions",
                "operationId": "adminAudit",
                "security": AUTH,
                "parameters": query_parameters(AuditQuery),
                "responses": {"200": _json("AuditLog", "the rows"), **_errors(400, 403, 404, *ALWAYS)},
            }
        },
        "/api/v1/rum": {
            "post": {
                "summary": "Load timings of photos from a visitor's browser (web/imagepipe.js enableLoadTimings; no token,"
                " rate limited per address, nothing stored but Prometheus metrics)",
                "operationId": "rum",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {"schema": _ref("RumBeacon")},
                        "application/json": {"schema": _ref("RumBeacon")},
                    },
                },
                "responses": {"204": {"description": "recorded"}, **_errors(400, 404, 413, 429)},
            }
        },
        "/api/v1/{entity}/{entity_id}/imports": {
            "parameters": [entity, ENTITY_ID],
            "post": {
                "summary": "Import images from URLs, with their RESO media fields: a job like an upload's; the worker"
                " downloads each URL (http/https, ports 80/443, public addresses only; docs/syndication.md)",
                "operationId": "importImages",
                "security": AUTH,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ImportRequest")}}},
                "responses": {"202": _json("UploadAccepted", "accepted; poll the job"), **_errors(400, 403, 404, 429, *ALWAYS)},
            },
        },
        "/api/v1/{entity}/{entity_id}/compliance": {
            "parameters": [entity, ENTITY_ID],
            "get": {
                "summary": "The listing's photos checked against a compliance profile: warnings, never refusals"
                " (the entity's writers and admins; docs/syndication.md)",
                "operationId": "listingCompliance",
                "security": AUTH,
                "parameters": query_parameters(ComplianceQuery),
                "responses": {"200": _json("Compliance", "the warnings"), **_errors(400, 403, 404, *ALWAYS)},
            },
        },
        "/api/v1/reso/Media": {
            "get": {
                "summary": "The RESO Media feed: ready, public media of the syndicated listings (RESO Data Dictionary"
                " 2.0 Media fields; OData $filter/$orderby/$top and @odata.nextLink; docs/syndication.md)",
                "operationId": "resoMedia",
                "security": PUBLIC,
                "parameters": query_parameters(ResoQuery),
                "responses": {"200": _json("ResoMediaPage", "one page, oldest change first"), **_errors(400, *ALWAYS)},
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (a bearer METRICS_TOKEN when one is configured)",
                "operationId": "metrics",
                "responses": {
                    "200": {"description": "the exposition format", "content": {"text/plain": {"schema": STR}}},
                    **_errors(401),
                },
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": _json("Health", "the process is up")}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: database, broker, store",
                "operationId": "readyz",
                "responses": {"200": _json("Ready", "ready"), "503": _json("NotReady", "something is down")},
            }
        },
        LEGACY_PATH: {
            "parameters": [_path_param("legacy_path", STR, "the rest of a legacy local URL")],
            "get": {
                "summary": "A legacy local URL (LEGACY_URL_PREFIX): 301 to the migrated image's large rendition",
                "operationId": "legacyUrl",
                "responses": {
                    "301": {"description": "moved to the migrated image", "headers": {"Location": {"schema": STR}}},
                    **_errors(404),
                },
            },
        },
        "/media/{key}": {
            "parameters": [_path_param("key", STR, "object key")],
            "get": {
                "summary": "Local store only: public/ objects, or private ones with a signature",
                "operationId": "media",
                "parameters": [_query("expires", INT, "from a signed URL"), _query("signature", STR, "from a signed URL")],
                "responses": {"200": {"description": "the object"}, **_errors(403, 404)},
            },
        },
        "/media/upload": {
            "post": {
                "summary": "Local store only: the presigned-POST equivalent",
                "operationId": "mediaUpload",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"type": "object"}}}},
                "responses": {"204": {"description": "stored"}, **_errors(400, 403, 413)},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imagepipe",
            "version": "1",
            "description": "Listing photo uploads, processing and delivery. Errors are always "
            '{"error": {"code", "message"}}; codes are listed in docs/errors.md.',
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)"}},
            "schemas": _schemas(),
        },
        "paths": paths,
    }


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(spec())


@bp.get("/api/docs")
def api_docs():
    return send_from_directory(WEB_DIR, "apidocs.html")
