"""Local-disk object store: the legacy store the migration reads from, and a store for unit tests.

Objects live under `root/<key>`; content type, cache control and metadata in a JSON sidecar
under `root/.meta/<key>.json`. Writes go to a temporary file renamed into place, so a reader
never sees half an object.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from .base import (
    CHECKSUM_FIELD,
    MAX_PRESIGNED_URL_S,
    PUBLIC_PREFIX,
    DeleteResult,
    ObjectInfo,
    ObjectNotFound,
    PermanentStorageError,
    PresignedPost,
    checksum_value,
    normalise_metadata,
)

_META = ".meta"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


class LocalObjectStore:
    name = "local"
    bucket = None

    def __init__(self, root: str | Path, *, public_base_url: str = "/media", signing_secret: str = ""):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_base_url = public_base_url.rstrip("/")
        self._secret = signing_secret.encode()

    def _path(self, key: str) -> Path:
        # Only canonical keys: no "..", ".", empty segments or backslashes, so the key a caller
        # checks (say, for a public/ prefix) is the object it gets.
        if not key or key.startswith(("/", _META)) or "\\" in key or posixpath.normpath(key) != key:
            raise PermanentStorageError(f"invalid key: {key!r}")
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise PermanentStorageError(f"invalid key: {key!r}")
        return path

    def _meta_path(self, key: str) -> Path:
        self._path(key)
        return self.root / _META / (key + ".json")

    def path_of(self, key: str) -> Path:
        """Where an object lives on disk (for serving it); raises ObjectNotFound."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def put(self, key, body, *, content_type, cache_control=None, metadata=None) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(body, (bytes, bytearray, memoryview)):
                    out.write(body)
                else:
                    shutil.copyfileobj(body, out, 1024 * 1024)
            meta = {
                "content_type": content_type,
                "cache_control": cache_control,
                "metadata": normalise_metadata(metadata),
            }
            meta_path = self._meta_path(key)
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
            meta_tmp.write_text(json.dumps(meta))
            os.replace(tmp, path)
            os.replace(meta_tmp, meta_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return self.head(key)

    def get(self, key: str) -> bytes:
        return self.path_of(key).read_bytes()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        with self.path_of(key).open("rb") as f:
            f.seek(start)
            return f.read(length)

    def head(self, key: str, *, checksum: bool = False) -> ObjectInfo:
        path = self.path_of(key)
        meta = {}
        mp = self._meta_path(key)
        if mp.exists():
            meta = json.loads(mp.read_text())
        return ObjectInfo(
            key=key,
            size=path.stat().st_size,
            content_type=meta.get("content_type"),
            cache_control=meta.get("cache_control"),
            metadata=meta.get("metadata", {}),
            sha256=_file_sha256(path) if checksum else None,
        )

    def copy(
        self,
        source: str,
        key: str,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        info = self.head(source)
        if content_type is None:
            content_type, cache_control, metadata = (
                info.content_type or "application/octet-stream",
                info.cache_control,
                info.metadata,
            )
        with open(self.path_of(source), "rb") as src:
            self.put(key, src, content_type=content_type, cache_control=cache_control, metadata=metadata)

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except PermanentStorageError:
            return False

    def delete(self, key: str) -> None:
        # S3 semantics: deleting a missing key succeeds.
        for p in (self._path(key), self._meta_path(key)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def delete_many(self, keys: list[str]) -> DeleteResult:
        result = DeleteResult()
        for key in dict.fromkeys(keys):
            try:
                self.delete(key)
                result.deleted.append(key)
            except (OSError, PermanentStorageError) as exc:
                result.errors[key] = str(exc)
        return result

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        keys = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root)
            if rel_dir.parts[:1] == (_META,):
                dirnames[:] = []
                continue
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = (rel_dir / name).as_posix() if rel_dir.parts else name
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            st = (self.root / key).stat()
            yield ObjectInfo(key=key, size=st.st_size, last_modified=datetime.fromtimestamp(st.st_mtime, UTC))

    def public_url(self, key: str) -> str:
        return f"{self.public_base_url}/{key}"

    def _signature(self, key: str, expires: int) -> str:
        return hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def presigned_get_url(self, key: str, expires_in_s: int = 300) -> str:
        if not self._secret:
            raise PermanentStorageError("no signing secret configured: cannot sign a URL")
        expires = int(time.time()) + max(1, min(int(expires_in_s), MAX_PRESIGNED_URL_S))
        return f"{self.public_base_url}/{key}?" + urlencode({"expires": expires, "signature": self._signature(key, expires)})

    def verify_signature(self, key: str, expires: str | None, signature: str | None) -> bool:
        if not self._secret or not expires or not signature or not re.fullmatch(r"[0-9]{1,12}", expires):
            return False
        if int(expires) < time.time():
            return False
        return hmac.compare_digest(self._signature(key, int(expires)), signature)

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
        """The same contract as S3's: a signed policy the /media/upload route enforces."""
        self._path(key)
        if not self._secret:
            raise PermanentStorageError("no signing secret configured: cannot sign an upload policy")
        policy = base64.urlsafe_b64encode(
            json.dumps(
                {
                    "key": key,
                    "content_type": content_type,
                    "min_bytes": max(1, int(min_bytes)),
                    "max_bytes": int(max_bytes),
                    "expires": int(time.time()) + max(1, min(int(expires_in_s), MAX_PRESIGNED_URL_S)),
                    **({"sha256": sha256} if sha256 else {}),
                },
                separators=(",", ":"),
            ).encode()
        ).decode()
        signature = hmac.new(self._secret, b"post\n" + policy.encode(), hashlib.sha256).hexdigest()
        return PresignedPost(
            url=f"{self.public_base_url}/upload",
            fields={
                "key": key,
                "Content-Type": content_type,
                **({CHECKSUM_FIELD: checksum_value(sha256)} if sha256 else {}),
                "policy": policy,
                "signature": signature,
            },
        )

    def check_post_policy(self, fields: Mapping[str, str]) -> dict:
        """The policy of a form upload if it is genuine and unexpired and the form agrees with
        it; raises PermanentStorageError saying what is wrong."""
        policy_b64, signature = fields.get("policy", ""), fields.get("signature", "")
        expected = hmac.new(self._secret, b"post\n" + policy_b64.encode(), hashlib.sha256).hexdigest()
        if not self._secret or not signature or not hmac.compare_digest(expected, signature):
            raise PermanentStorageError("invalid upload signature")
        policy = json.loads(base64.urlsafe_b64decode(policy_b64.encode()))
        if policy["expires"] < time.time():
            raise PermanentStorageError("the upload policy has expired")
        if fields.get("key") != policy["key"]:
            raise PermanentStorageError("the key does not match the upload policy")
        if fields.get("Content-Type") != policy["content_type"]:
            raise PermanentStorageError("the Content-Type does not match the upload policy")
        pinned = policy.get("sha256")
        if pinned and fields.get(CHECKSUM_FIELD) != checksum_value(pinned):
            raise PermanentStorageError("the checksum does not match the upload policy")
        return policy

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise PermanentStorageError(f"storage directory not writable: {self.root}")

    def ensure_bucket(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def allow_anonymous_read(self, prefix: str) -> None:
        # The local backend's blueprint (api/local_media.py) serves PUBLIC_PREFIX to anyone and
        # nothing else without a signature; that rule is fixed, not configured per bucket.
        if prefix != PUBLIC_PREFIX:
            raise PermanentStorageError(f"the local backend serves only {PUBLIC_PREFIX} anonymously")

    def is_public(self, key: str) -> bool:
        return key.startswith(PUBLIC_PREFIX)
