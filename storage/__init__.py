from .base import (
    IMMUTABLE_CACHE_CONTROL,
    MAX_PRESIGNED_URL_S,
    PRIVATE_CACHE_CONTROL,
    PUBLIC_PREFIX,
    DeleteResult,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    PermanentStorageError,
    PresignedPost,
    StorageError,
    TransientStorageError,
)

__all__ = [
    "IMMUTABLE_CACHE_CONTROL",
    "MAX_PRESIGNED_URL_S",
    "PRIVATE_CACHE_CONTROL",
    "PUBLIC_PREFIX",
    "DeleteResult",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "PermanentStorageError",
    "PresignedPost",
    "StorageError",
    "TransientStorageError",
]
