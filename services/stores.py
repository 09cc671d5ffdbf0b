"""Build the configured object store."""
from __future__ import annotations

from storage.base import ObjectStore
from storage.local import LocalObjectStore
from storage.s3 import S3ObjectStore

from .config import Settings


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "local":
        base = f"{settings.public_api_url}/media" if settings.public_api_url else "/media"
        return LocalObjectStore(settings.local_storage_dir, public_base_url=base,
                                signing_secret=settings.signing_secret)
    return S3ObjectStore(
        settings.aws_s3_bucket,
        region=settings.aws_region,
        endpoint_url=settings.aws_s3_endpoint_url,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        cloudfront_url=settings.aws_cloudfront_url,
    )
