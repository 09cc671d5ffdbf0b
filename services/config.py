"""One settings object, read from the environment once and validated as a whole.

`Settings.from_env()` collects every problem before failing, so an operator fixes a broken
deployment in one pass instead of one variable per restart.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

ENTITY_TYPES = ("properties", "projects", "avatars")


class ConfigError(Exception):
    """Raised with every offending variable listed, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    var_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    public_api_url: str = ""

    database_url: str = ""
    broker_url: str = ""
    task_queue: str = "images"

    storage_backend: str = "s3"
    aws_region: str = "us-east-1"
    aws_s3_bucket: str = "imagepipe"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_s3_endpoint_url: str | None = None
    aws_cloudfront_url: str | None = None
    local_storage_dir: Path = Path("var/storage")

    jwt_secret: str = ""
    jwt_secret_generated: bool = False
    signing_secret: str = ""

    max_upload_bytes: int = 25 * 1024 * 1024
    max_files_per_request: int = 50
    max_pixels: int = 120_000_000
    max_side_px: int = 20_000
    min_side_px: int = 64
    max_jpeg_scans: int = 100
    max_decode_mb: int = 512

    jpeg_quality: int = 82
    jpeg_progressive: tuple[str, ...] = ("large",)
    jpeg_subsample: str = "auto"
    jpeg_optimize_coding: bool = True
    webp_quality: int = 80
    webp_effort: int = 4
    png_compression: int = 6
    avif_enabled: bool = False
    avif_quality: int = 60
    avif_effort: int = 0

    upload_url_expires_s: int = 600
    rate_limit_uploads_per_minute: int = 120
    rate_limit_redis_url: str | None = None
    callback_allowed_hosts: tuple[str, ...] = ()
    callback_secret: str = ""
    callback_max_attempts: int = 8
    cloudfront_key_pair_id: str | None = None
    cloudfront_private_key_path: Path | None = None

    task_soft_time_limit_s: int = 120
    task_time_limit_s: int = 180
    task_max_retries: int = 5
    worker_max_memory_mb: int = 512

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        problems: list[str] = []
        p = _Reader(env, problems)

        mode = p.choice("IMAGEPIPE_ENV", ("development", "production"), "development")
        var_dir = Path(env.get("IMAGEPIPE_VAR_DIR", "var"))
        backend = p.choice("STORAGE_BACKEND", ("s3", "local"), "s3")

        database_url = env.get("DATABASE_URL") or ""
        if not database_url:
            if mode == "production":
                problems.append(
                    "DATABASE_URL is required in production (e.g. postgresql+psycopg2://user:pass@host:5432/imagepipe)")
            database_url = f"sqlite:///{var_dir / 'imagepipe.db'}"
        elif "://" not in database_url:
            problems.append("DATABASE_URL must be a SQLAlchemy URL like postgresql+psycopg2://user:pass@host/db,"
                            f" got {database_url!r}")

        broker_url = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL") or ""
        if not broker_url:
            if mode == "production":
                problems.append("CELERY_BROKER_URL (or REDIS_URL) is required in production (e.g. redis://host:6379/0)")
            broker_url = "filesystem://"
        elif "://" not in broker_url:
            problems.append(f"CELERY_BROKER_URL must be a URL like redis://host:6379/0, got {broker_url!r}")

        endpoint = env.get("AWS_S3_ENDPOINT_URL") or None
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            problems.append(f"AWS_S3_ENDPOINT_URL must start with http:// or https://, got {endpoint!r}")
        cloudfront = (env.get("AWS_CLOUDFRONT_URL") or "").rstrip("/") or None
        if cloudfront and urlparse(cloudfront).scheme not in ("http", "https"):
            problems.append(f"AWS_CLOUDFRONT_URL must be an http(s) URL like https://d123.cloudfront.net, got {cloudfront!r}")
        bucket = env.get("AWS_S3_BUCKET") or ""
        if backend == "s3":
            if not bucket:
                if mode == "production":
                    problems.append("AWS_S3_BUCKET is required when STORAGE_BACKEND=s3 (a bucket name like listing-images)")
                bucket = "imagepipe"
            elif not _valid_bucket(bucket):
                problems.append(f"AWS_S3_BUCKET must be 3-63 lowercase letters, digits, dots or hyphens, got {bucket!r}")
        key_id = env.get("AWS_ACCESS_KEY_ID") or None
        secret_key = env.get("AWS_SECRET_ACCESS_KEY") or None
        if bool(key_id) != bool(secret_key):
            problems.append("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together"
                            " (or both left unset to use the instance role)")

        jwt_secret = env.get("JWT_SECRET") or ""
        generated = False
        if jwt_secret and len(jwt_secret) < 32:
            problems.append("JWT_SECRET must be at least 32 characters"
                            " (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        if not jwt_secret:
            if mode == "production":
                problems.append("JWT_SECRET is required in production (at least 32 random characters)")
            else:
                jwt_secret, generated = _dev_secret(var_dir / "secrets" / "jwt_secret"), True
        signing_secret = env.get("SIGNING_SECRET") or ""
        if not signing_secret:
            # Local presigned URLs need a key of their own; derive from the JWT secret so dev
            # setups stay one-variable while production may rotate them independently.
            signing_secret = "sign:" + jwt_secret

        rate_redis = env.get("RATE_LIMIT_REDIS_URL") or env.get("REDIS_URL") or (
            broker_url if broker_url.startswith(("redis://", "rediss://")) else None)
        hosts = tuple(h.strip().lower() for h in (env.get("CALLBACK_ALLOWED_HOSTS") or "").split(",") if h.strip())
        cf_key_id = env.get("AWS_CLOUDFRONT_KEY_PAIR_ID") or None
        cf_key_path = Path(env["AWS_CLOUDFRONT_PRIVATE_KEY_PATH"]) if env.get("AWS_CLOUDFRONT_PRIVATE_KEY_PATH") else None
        if bool(cf_key_id) != bool(cf_key_path):
            problems.append("AWS_CLOUDFRONT_KEY_PAIR_ID and AWS_CLOUDFRONT_PRIVATE_KEY_PATH must be set together")
        elif cf_key_path and not cf_key_path.is_file():
            problems.append(f"AWS_CLOUDFRONT_PRIVATE_KEY_PATH must name a PEM file, {str(cf_key_path)!r} does not exist")
        if cf_key_id and not cloudfront:
            problems.append("AWS_CLOUDFRONT_KEY_PAIR_ID needs AWS_CLOUDFRONT_URL (the distribution the URLs are for)")

        settings = cls(
            env=mode,
            var_dir=var_dir,
            host=env.get("HOST", "127.0.0.1"),
            port=p.integer("PORT", 8000, 1, 65535),
            public_api_url=(env.get("PUBLIC_API_URL") or "").rstrip("/"),
            database_url=database_url,
            broker_url=broker_url,
            task_queue=env.get("CELERY_QUEUE") or "images",
            storage_backend=backend,
            aws_region=env.get("AWS_REGION") or "us-east-1",
            aws_s3_bucket=bucket,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret_key,
            aws_s3_endpoint_url=endpoint,
            aws_cloudfront_url=cloudfront,
            local_storage_dir=Path(env.get("LOCAL_STORAGE_DIR") or var_dir / "storage"),
            jwt_secret=jwt_secret,
            jwt_secret_generated=generated,
            signing_secret=signing_secret,
            max_upload_bytes=p.integer("MAX_UPLOAD_BYTES", 25 * 1024 * 1024, 1024, 5 * 1024**3),
            max_files_per_request=p.integer("MAX_FILES_PER_REQUEST", 50, 1, 1000),
            max_pixels=p.integer("MAX_PIXELS", 120_000_000, 1, 10**10),
            max_side_px=p.integer("MAX_SIDE_PX", 20_000, 1, 10_000_000),
            min_side_px=p.integer("MIN_SIDE_PX", 64, 1, 10_000),
            max_jpeg_scans=p.integer("MAX_JPEG_SCANS", 100, 1, 10_000),
            max_decode_mb=p.integer("MAX_DECODE_MB", 512, 16, 1_048_576),
            jpeg_quality=p.integer("JPEG_QUALITY", 82, 1, 100),
            webp_quality=p.integer("WEBP_QUALITY", 80, 1, 100),
            jpeg_progressive=p.names("JPEG_PROGRESSIVE", ("thumbnail", "medium", "large"), ("large",)),
            jpeg_subsample=p.choice("JPEG_SUBSAMPLE", ("auto", "on", "off"), "auto"),
            jpeg_optimize_coding=p.boolean("JPEG_OPTIMIZE_CODING", True),
            webp_effort=p.integer("WEBP_EFFORT", 4, 0, 6),
            png_compression=p.integer("PNG_COMPRESSION", 6, 0, 9),
            avif_enabled=p.boolean("AVIF_ENABLED", False),
            avif_quality=p.integer("AVIF_QUALITY", 60, 1, 100),
            avif_effort=p.integer("AVIF_EFFORT", 0, 0, 9),
            upload_url_expires_s=p.integer("UPLOAD_URL_EXPIRES_S", 600, 60, 7 * 24 * 3600),
            rate_limit_uploads_per_minute=p.integer("RATE_LIMIT_UPLOADS_PER_MINUTE", 120, 0, 1_000_000),
            rate_limit_redis_url=rate_redis,
            callback_allowed_hosts=hosts,
            callback_secret=env.get("CALLBACK_SECRET") or "callback:" + jwt_secret,
            callback_max_attempts=p.integer("CALLBACK_MAX_ATTEMPTS", 8, 1, 50),
            cloudfront_key_pair_id=cf_key_id,
            cloudfront_private_key_path=cf_key_path,
            task_soft_time_limit_s=p.integer("TASK_SOFT_TIME_LIMIT_S", 120, 1, 86400),
            task_time_limit_s=p.integer("TASK_TIME_LIMIT_S", 180, 1, 86400),
            task_max_retries=p.integer("TASK_MAX_RETRIES", 5, 0, 100),
            worker_max_memory_mb=p.integer("WORKER_MAX_MEMORY_MB", 512, 0, 1_048_576),
        )
        if settings.task_time_limit_s <= settings.task_soft_time_limit_s:
            problems.append(
                "TASK_TIME_LIMIT_S must be greater than TASK_SOFT_TIME_LIMIT_S (the hard limit backs up the soft one)")
        if problems:
            raise ConfigError(problems)
        return settings


class _Reader:
    def __init__(self, env: dict[str, str], problems: list[str]):
        self.env, self.problems = env, problems

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.env.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            self.problems.append(f"{name} must be a whole number between {lo} and {hi}, got {raw!r}")
            return default
        if not lo <= value <= hi:
            self.problems.append(f"{name} must be between {lo} and {hi}, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = (self.env.get(name) or "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def names(self, name: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated subset of `allowed`; "none" (or empty after trimming) is the empty set."""
        raw = self.env.get(name)
        if raw is None:
            return default
        items = tuple(dict.fromkeys(i.strip().lower() for i in raw.split(",") if i.strip()))
        if items in ((), ("none",)):
            return ()
        unknown = [i for i in items if i not in allowed]
        if unknown:
            self.problems.append(f"{name} must be a comma-separated list of {', '.join(allowed)} (or none),"
                                 f" got {raw!r}")
            return default
        return items

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = (self.env.get(name) or default).strip().lower()
        if raw not in allowed:
            self.problems.append(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
            return default
        return raw


def _valid_bucket(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", name))


def _dev_secret(path: Path) -> str:
    """Development mode only: a random secret kept under var/ so tokens survive restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read once."""
    global _cached
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def set_settings(settings: Settings | None) -> None:
    global _cached
    _cached = settings
