"""Build the configured object store."""

from __future__ import annotations

from services.infra.metrics import observe_storage
from services.infra.settings import Settings
from storage.base import BucketAdmin, ObjectStore
from storage.local import LocalObjectStore
from storage.s3 import S3ObjectStore


class NoBucket(Exception):
    """STORAGE_BACKEND=local: there is no bucket to administer."""


def make_bucket_admin(settings: Settings) -> BucketAdmin:
    """The configured S3 bucket's administration (`imagepipe bucket setup|check`, `make run`)."""
    store = make_store(settings)
    if not isinstance(store, S3ObjectStore):
        raise NoBucket(
            f"STORAGE_BACKEND=local has no bucket to set up: the files live in {settings.local_storage_dir},"
            " and the API serves public/ itself"
        )
    return store.admin()


def make_store(settings: Settings, *, in_request: bool = False) -> ObjectStore:
    """`in_request`: the API's store, which tries twice, within STORE_REQUEST_DEADLINE_S, so that a
    request answers within its budget; workers retry more (STORE_MAX_ATTEMPTS), then the task
    retries with backoff."""
    if settings.storage_backend == "local":
        base = f"{settings.public_api_url}/media" if settings.public_api_url else "/media"
        return LocalObjectStore(settings.local_storage_root, public_base_url=base, signing_secret=settings.signing_secret)
    return S3ObjectStore(
        settings.aws_s3_bucket,
        region=settings.aws_region,
        endpoint_url=settings.aws_s3_endpoint_url,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        cloudfront_url=settings.aws_cloudfront_url,
        connect_timeout_s=settings.store_connect_timeout_s,
        read_timeout_s=settings.store_read_timeout_s,
        max_attempts=min(2, settings.store_max_attempts) if in_request else settings.store_max_attempts,
        deadline_s=settings.store_request_deadline_s if in_request else None,
        observe=observe_storage,
    )
