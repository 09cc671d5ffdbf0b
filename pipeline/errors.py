"""Permanent image problems. Each has a stable code and the HTTP status an API reports it with."""

from __future__ import annotations


class ImageError(Exception):
    code = "invalid_image"
    http_status = 422

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnsupportedMediaType(ImageError):
    code = "unsupported_media_type"
    http_status = 415


class FileTooLarge(ImageError):
    code = "file_too_large"
    http_status = 413


class SizeMismatch(ImageError):
    """A direct upload's bytes are not the size its client declared (the presigned POST is bound
    to it; a store that does not enforce the range is caught at completion)."""

    code = "size_mismatch"
    http_status = 400


class ImageTooLarge(ImageError):
    code = "image_too_large"
    http_status = 422


class ImageTooSmall(ImageError):
    code = "image_too_small"
    http_status = 422


class ImageTooComplex(ImageError):
    """Valid, but costlier to decode than any real photo: a progressive JPEG's decode cost
    grows with scans x pixels, and a few hundred bytes per scan can buy seconds of CPU."""

    code = "image_too_complex"
    http_status = 422


class CorruptImage(ImageError):
    code = "corrupt_image"
    http_status = 422
