"""The one storage interface every backend implements, and the errors callers may see."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Protocol, runtime_checkable

# Renditions never change once written (a changed spec makes a new key), so caches may keep
# them for a year; originals and staging objects are private and must not be cached.
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
PRIVATE_CACHE_CONTROL = "private, no-store"

PUBLIC_PREFIX = "public/"
# SigV4 presigned URLs cannot outlive a week; the local backend keeps the same contract.
MAX_PRESIGNED_URL_S = 7 * 24 * 3600


class StorageError(Exception):
    """Base of every error a store raises."""


class ObjectNotFound(StorageError):
    def __init__(self, key: str):
        super().__init__(f"object not found: {key}")
        self.key = key


class TransientStorageError(StorageError):
    """Worth retrying: 5xx, throttling, timeouts, dropped connections."""


class PermanentStorageError(StorageError):
    """Retrying will not help: access denied, bad request, missing bucket."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None
    cache_control: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: datetime | None = None  # aware UTC; from list() and head()
    sha256: str | None = None  # hex; from head(checksum=True) where the store keeps one (S3's ChecksumSHA256)


@dataclass(frozen=True)
class PresignedPost:
    """An HTML-form upload: POST multipart/form-data to `url` with every field, file last."""

    url: str
    fields: Mapping[str, str]


@dataclass
class DeleteResult:
    deleted: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class ObjectStore(Protocol):
    """Everything a caller may use; both backends implement all of it."""

    name: str

    @property
    def bucket(self) -> str | None:
        """Recorded on each image (None for the local backend)."""
        ...

    def put(
        self,
        key: str,
        body: bytes | IO[bytes],
        *,
        content_type: str,
        cache_control: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> ObjectInfo: ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to `length` bytes from `start` (a ranged GET): the sniff of a staged upload."""
        ...

    def head(self, key: str, *, checksum: bool = False) -> ObjectInfo:
        """`checksum`: also the object's SHA-256 where the store has one (S3: the checksum the
        upload carried and the store verified; the local backend hashes its file)."""
        ...

    def copy(
        self,
        source: str,
        key: str,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Copy an object (server-side on S3) with its content type, cache control and metadata,
        or, when `content_type` is given, with these instead."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_many(self, keys: list[str]) -> DeleteResult: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def public_url(self, key: str) -> str: ...

    def presigned_get_url(self, key: str, expires_in_s: int = 300) -> str: ...

    def presigned_post(
        self,
        key: str,
        *,
        content_type: str,
        max_bytes: int,
        expires_in_s: int,
        min_bytes: int = 1,
        sha256: str | None = None,
    ) -> PresignedPost:
        """A browser upload of exactly `key`, of this content type, min_bytes..max_bytes long,
        until expiry, and (`sha256`, hex) of exactly these bytes; the store itself refuses anything else."""
        ...

    def ping(self) -> None: ...

    def ensure_bucket(self) -> None:
        """Create the bucket (or directory) when it does not exist."""
        ...

    def allow_anonymous_read(self, prefix: str) -> None:
        """Make objects under `prefix` readable by anyone, and nothing else."""
        ...


@runtime_checkable
class BucketAdmin(Protocol):
    """Administration of an S3 bucket's own configuration (`imagepipe bucket setup|check`): what
    only an S3 store has, kept off the generic ObjectStore. `part` is `policy` (a dict), `cors` or
    `lifecycle` (lists of rules); None when the bucket has none."""

    bucket: str

    def bucket_exists(self) -> bool: ...

    def ensure_bucket(self) -> None: ...

    def get_bucket_config(self, part: str) -> Any: ...

    def put_bucket_config(self, part: str, value: Any) -> None: ...


CHECKSUM_FIELD = "x-amz-checksum-sha256"  # the form field of a POST upload's SHA-256, S3's name for both stores


def checksum_value(sha256_hex: str) -> str:
    """A SHA-256 (hex) as S3 writes checksums: base64 of the digest (the POST field and ChecksumSHA256)."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def checksum_hex(stored: str | None) -> str | None:
    """S3's base64 ChecksumSHA256 as hex; None for none, or for a multipart object's checksum of
    checksums (`...-N`), which is not the bytes' SHA-256."""
    if not stored or "-" in stored:
        return None
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def normalise_metadata(metadata: Mapping[str, object] | None) -> dict[str, str]:
    """S3 user metadata is ASCII key/value text; keep ours lower-case and hyphenated."""
    out: dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if v is None:
            continue
        key = str(k).lower().replace("_", "-")
        value = str(v)
        if not value.isascii():
            value = value.encode("ascii", "backslashreplace").decode()
        out[key] = value
    return out
