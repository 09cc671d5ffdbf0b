"""CloudFront signed URLs (canned policy), for private objects served through a distribution."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from botocore.signers import CloudFrontSigner


@lru_cache(maxsize=4)
def _private_key(path: Path):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def cloudfront_signed_url(url: str, expires_at: datetime, key_pair_id: str, private_key_path: Path) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = _private_key(private_key_path)

    def rsa_sign(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # what CloudFront verifies

    return CloudFrontSigner(key_pair_id, rsa_sign).generate_presigned_url(url, date_less_than=expires_at)
