"""S3 (and S3-compatible: SeaweedFS, MinIO) object store on boto3.

Retries live here and only here: tenacity around each single call, bounded and jittered.
botocore's own retry loop is switched off so the two never multiply.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, BinaryIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_any, wait_random_exponential
from tenacity.stop import stop_base

from .base import (
    CHECKSUM_FIELD,
    MAX_PRESIGNED_URL_S,
    DeleteResult,
    ObjectInfo,
    ObjectNotFound,
    PermanentStorageError,
    PresignedPost,
    TransientStorageError,
    checksum_hex,
    checksum_value,
    normalise_metadata,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT_CODES = {
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "RequestLimitExceeded",
    "BadDigest",  # body damaged in transit: sending it again is the fix
}
DELETE_BATCH_SIZE = 1000  # the most S3's DeleteObjects accepts in one call
SINGLE_PUT_BYTES = 8 * 1024 * 1024  # s3transfer's multipart threshold: a file up to it is sent in one PutObject


def _classify(exc: Exception, key: str | None) -> Exception:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _NOT_FOUND or (status == "404" and code not in ("NoSuchBucket",)):
            return ObjectNotFound(key or "?")
        if code == "NotImplemented" or status == "501":  # the server lacks the feature: asking again will not help
            return PermanentStorageError(f"S3 {code or status}: {err.get('Message', '')}".strip())
        if code in _TRANSIENT_CODES or status.startswith("5") or status == "429":
            return TransientStorageError(f"S3 {code or status}: {err.get('Message', '')}".strip())
        return PermanentStorageError(f"S3 {code or status}: {err.get('Message', '')}".strip())
    if isinstance(exc, (BotoConnectionError, HTTPClientError, ReadTimeoutError)):
        return TransientStorageError(f"S3 connection problem: {exc}")
    if isinstance(exc, BotoCoreError):
        return PermanentStorageError(f"S3 client error: {exc}")
    return exc


class _Unclosable(io.RawIOBase):
    def __init__(self, raw: BinaryIO):
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:  # the caller owns the file
        pass


def _remaining(body: BinaryIO) -> int:
    start = body.tell()
    end = body.seek(0, io.SEEK_END)
    body.seek(start)
    return end - start


class _PastDeadline(stop_base):
    """Stop when another try could run past the store's deadline (S3ObjectStore deadline_s)."""

    def __init__(self, store: S3ObjectStore):
        self.store = store

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.store.deadline_s is None:
            return False
        return (retry_state.seconds_since_start or 0.0) + self.store.try_budget_s > self.store.deadline_s


def over_tls(endpoint_url: str | None) -> bool:
    """True for AWS's own endpoints (https) and an https endpoint URL."""
    return endpoint_url is None or endpoint_url.lower().startswith("https://")


class S3ObjectStore:
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        cloudfront_url: str | None = None,
        max_attempts: int = 4,
        max_backoff_s: float = 4.0,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        deadline_s: float | None = None,
        observe: Callable[[str, str, float], None] | None = None,
    ):
        """`observe(op, outcome, seconds)` is told of every operation (services/infra/metrics.py).
        `deadline_s`: one operation's budget, its retries included: a try that could run past it
        (a connect and a read timeout) is not started, so a frozen store costs one try, while a
        fast failure (a refused connection, a 503) is still tried again."""
        self.bucket = bucket
        self.observe = observe
        self.region = region
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.cloudfront_url = cloudfront_url.rstrip("/") if cloudfront_url else None
        self.max_attempts = max_attempts
        self.max_backoff_s = max_backoff_s
        self.deadline_s = deadline_s
        self.try_budget_s = connect_timeout_s + read_timeout_s  # what one try may take at worst
        config = Config(
            region_name=region,
            signature_version="s3v4",
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            # Path-style works with every S3-compatible server; AWS accepts virtual-hosted too.
            # Over TLS the body is not hashed into the signature (UNSIGNED-PAYLOAD): TLS already
            # protects it in transit, and the SHA-256 of every byte sent was 8 % of the API's CPU.
            # Over plain HTTP (a store on the same private network) it is still signed.
            s3={
                "addressing_style": "path" if endpoint_url else "virtual",
                "payload_signing_enabled": not over_tls(self.endpoint_url),
            },
            # Only compute checksums where S3 demands them: S3-compatible servers vary.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    # -- retry wrapper -------------------------------------------------------------------
    def _call(self, op: str, fn: Callable[[], T], key: str | None = None, rewind: BinaryIO | None = None) -> T:
        """One store operation `op` (retries included), reported to the observer with its outcome."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = self._retrying(fn, key, rewind)
            outcome = "ok"
            return result
        except ObjectNotFound:
            outcome = "not_found"
            raise
        except TransientStorageError:
            outcome = "transient"
            raise
        finally:
            if self.observe is not None:
                try:
                    self.observe(op, outcome, time.perf_counter() - started)
                except Exception:  # noqa: BLE001 - measuring must never fail the call
                    log.exception("storage observer failed")

    def _retrying(self, fn: Callable[[], T], key: str | None, rewind: BinaryIO | None) -> T:
        start = rewind.tell() if rewind is not None else 0
        retrying = Retrying(
            retry=retry_if_exception_type(TransientStorageError),
            stop=stop_any(stop_after_attempt(self.max_attempts), _PastDeadline(self)),
            wait=wait_random_exponential(multiplier=0.1, max=self.max_backoff_s),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if rewind is not None:
                    rewind.seek(start)
                try:
                    return fn()
                except Exception as exc:  # normalised below; callers never see botocore
                    mapped = _classify(exc, key)
                    if mapped is exc:
                        raise
                    if isinstance(mapped, TransientStorageError):
                        log.warning("transient S3 error (attempt %s): %s", attempt.retry_state.attempt_number, mapped)
                    raise mapped from exc
        raise AssertionError("unreachable")

    # -- protocol ------------------------------------------------------------------------
    def put(self, key, body, *, content_type, cache_control=None, metadata=None) -> ObjectInfo:
        extra = {"ContentType": content_type, "Metadata": normalise_metadata(metadata)}
        if cache_control:
            extra["CacheControl"] = cache_control
        if not isinstance(body, (bytes, bytearray, memoryview)) and _remaining(body) <= SINGLE_PUT_BYTES:
            body = body.read()  # one PutObject: no transfer manager, no threads, for a photo-sized file
        if isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
            self._call("put", lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra), key)
            size = len(data)
        else:
            # upload_fileobj streams from the file (multipart above 8 MiB); we rewind on retry.
            # s3transfer closes the file when a transfer fails, so it gets a view it cannot close.
            unclosable = _Unclosable(body)
            size = _remaining(body)
            self._call(
                "put",
                lambda: self.client.upload_fileobj(unclosable, self.bucket, key, ExtraArgs=extra),
                key,
                rewind=body,
            )
        return ObjectInfo(key=key, size=size, content_type=content_type, cache_control=cache_control, metadata=extra["Metadata"])

    def get(self, key: str) -> bytes:
        def fetch() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

        return self._call("get", fetch, key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        def fetch() -> bytes:
            r = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
            return r["Body"].read()

        return self._call("get", fetch, key)

    def head(self, key: str, *, checksum: bool = False) -> ObjectInfo:
        extra = {"ChecksumMode": "ENABLED"} if checksum else {}
        r = self._call("head", lambda: self.client.head_object(Bucket=self.bucket, Key=key, **extra), key)
        stored = r.get("ChecksumSHA256")
        return ObjectInfo(
            key=key,
            size=int(r.get("ContentLength", 0)),
            content_type=r.get("ContentType"),
            cache_control=r.get("CacheControl"),
            metadata=r.get("Metadata", {}),
            etag=(r.get("ETag") or "").strip('"') or None,
            last_modified=r.get("LastModified"),
            sha256=checksum_hex(stored),
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
        # One CopyObject: content type, cache control and metadata come along, or are replaced by
        # those given (MetadataDirective REPLACE). S3's CopyObject stops at 5 GB, far above any
        # image; a source that large is refused with InvalidRequest and copied by the managed
        # (multipart) copy instead. The managed copy is not the first choice: it HEADs the source
        # and starts a thread pool on every call, which was a worker's every image.
        extra: dict[str, Any] = {}
        if content_type is not None:
            extra = {"MetadataDirective": "REPLACE", "ContentType": content_type, "Metadata": normalise_metadata(metadata)}
            if cache_control:
                extra["CacheControl"] = cache_control
        copy_source = {"Bucket": self.bucket, "Key": source}
        try:
            self._call(
                "copy",
                lambda: self.client.copy_object(CopySource=copy_source, Bucket=self.bucket, Key=key, **extra),
                source,
            )
        except PermanentStorageError as exc:
            if "InvalidRequest" not in str(exc):
                raise
            self._call("copy", lambda: self.client.copy(copy_source, self.bucket, key, ExtraArgs=extra or None), source)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
            return True
        except ObjectNotFound:
            return False

    def delete(self, key: str) -> None:
        self._call("delete", lambda: self.client.delete_object(Bucket=self.bucket, Key=key), key)

    def delete_many(self, keys: list[str]) -> DeleteResult:
        result = DeleteResult()
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), DELETE_BATCH_SIZE):
            chunk = unique[i : i + DELETE_BATCH_SIZE]
            r = self._call(
                "delete_many",
                partial(
                    self.client.delete_objects,
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": False},
                ),
            )
            result.deleted.extend(d["Key"] for d in r.get("Deleted", []))
            for e in r.get("Errors", []):
                result.errors[e["Key"]] = f"{e.get('Code')}: {e.get('Message', '')}".strip()
        return result

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token = None
        while True:
            kwargs = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list", partial(self.client.list_objects_v2, **kwargs))
            for obj in page.get("Contents", []):
                yield ObjectInfo(
                    key=obj["Key"],
                    size=int(obj["Size"]),
                    etag=obj.get("ETag", "").strip('"'),
                    last_modified=obj.get("LastModified"),
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def public_url(self, key: str) -> str:
        if self.cloudfront_url:
            return f"{self.cloudfront_url}/{key}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    def presigned_get_url(self, key: str, expires_in_s: int = 300) -> str:
        expires = max(1, min(int(expires_in_s), MAX_PRESIGNED_URL_S))
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires)

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
        # boto3 adds the bucket and exact-key conditions itself. A SHA-256 pinned in the policy
        # is also sent as the upload's checksum: the store refuses other bytes (BadDigest) and
        # keeps the checksum, which head(checksum=True) reads back.
        fields: dict[str, str] = {"Content-Type": content_type}
        if sha256 is not None:
            fields["x-amz-checksum-algorithm"] = "SHA256"
            fields[CHECKSUM_FIELD] = checksum_value(sha256)
        conditions: list = [{name: value} for name, value in fields.items()]
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields=fields,
            Conditions=[*conditions, ["content-length-range", max(1, min_bytes), max_bytes]],
            ExpiresIn=expires_in_s,
        )
        return PresignedPost(url=post["url"], fields=dict(post["fields"]))

    def ping(self) -> None:
        self._call("ping", lambda: self.client.head_bucket(Bucket=self.bucket))

    # -- provisioning (used by `imagepipe run` and tests, not by request paths) ------------
    def ensure_bucket(self) -> None:
        try:
            self.ping()
        except (ObjectNotFound, PermanentStorageError):
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1" and not self.endpoint_url:
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self._call("create_bucket", lambda: self.client.create_bucket(**kwargs))

    def allow_anonymous_read(self, prefix: str) -> None:
        """Bucket policy: anonymous GET for objects under `prefix`, nothing else."""
        self.admin().put_bucket_config("policy", anonymous_read_policy(self.bucket, prefix))

    def admin(self) -> S3BucketAdmin:
        """The bucket's own configuration (policy, CORS, lifecycle): `imagepipe bucket setup|check`."""
        return S3BucketAdmin(self)


class S3BucketAdmin:
    """storage.base.BucketAdmin for an S3 bucket, through its store's client and retries."""

    def __init__(self, store: S3ObjectStore):
        self.store = store
        self.bucket: str = store.bucket

    def ensure_bucket(self) -> None:
        self.store.ensure_bucket()

    def bucket_exists(self) -> bool:
        """False only when the store says there is no such bucket; any other refusal (credentials,
        access) is raised as it is, not reported as a missing bucket."""
        try:
            self.store.ping()
            return True
        except ObjectNotFound:
            return False
        except PermanentStorageError as exc:
            if "NoSuchBucket" in str(exc):
                return False
            raise

    def get_bucket_config(self, part: str):
        """The bucket's `policy` (dict), `cors` (rules) or `lifecycle` (rules); None when unset."""
        getter, absent, pick = _BUCKET_PARTS[part]
        store = self.store
        try:
            answer = store._call("get_bucket_config", lambda: getattr(store.client, getter)(Bucket=self.bucket))
        except PermanentStorageError as exc:
            if any(code in str(exc) for code in absent):
                return None
            raise
        except ObjectNotFound:  # some servers answer 404 without the specific code
            return None
        return pick(answer)

    def put_bucket_config(self, part: str, value) -> None:
        bucket, client = self.bucket, self.store.client
        calls = {
            "policy": lambda: client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(value)),
            "cors": lambda: client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": value}),
            "lifecycle": lambda: client.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": value}
            ),
        }
        self.store._call("put_bucket_config", calls[part])


def anonymous_read_policy(bucket: str | None, prefix: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadRenditions",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
            }
        ],
    }


_BUCKET_PARTS = {
    "policy": ("get_bucket_policy", ("NoSuchBucketPolicy",), lambda a: json.loads(a["Policy"])),
    "cors": ("get_bucket_cors", ("NoSuchCORSConfiguration",), lambda a: a.get("CORSRules", [])),
    "lifecycle": ("get_bucket_lifecycle_configuration", ("NoSuchLifecycleConfiguration",), lambda a: a.get("Rules", [])),
}
