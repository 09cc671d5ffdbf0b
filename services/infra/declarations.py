"""The settings' declarations: every setting is one `setting(...)` here (its environment
variable, type, default, bounds, one line of documentation, whether it is a secret); the
pipeline's limits and encoder settings are declared on their own dataclasses (pipeline/limits.py,
pipeline/specs.py) and become settings field by field (`pipeline_fields`). Loading and the
derived values are services/infra/settings.py; what is generated from the declarations (the docs
table, .env.example) is services/infra/settings_docs.py.
"""

from __future__ import annotations

import contextvars
import dataclasses
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

GROUPS = {
    "general": "general",
    "data": "database and broker",
    "storage": "object storage",
    "secrets": "secrets",
    "limits": "limits (checked before a pixel is decoded)",
    "encoders": "encoders (docs/benchmarks.md: the measurements behind the defaults)",
    "delivery": "uploads, callbacks, signed URLs",
    "tasks": "tasks and workers",
    "timeouts": "timeouts (docs/reliability.md: a hung dependency costs seconds, never a process)",
    "observability": "metrics and Flower (docs/deploy.md)",
    "cost": 'delivery and cost (docs/operations.md "Cost and delivery"; AWS list prices, us-east-1, as of PRICES_AS_OF)',
    "moderation": "lifted photos and takedowns (docs/operations.md; thresholds measured in docs/benchmarks.md)",
    "syndication": "listing media, RESO feeds and import by URL (docs/syndication.md)",
    "devrun": "make run / imagepipe run only",
}


class ConfigError(Exception):
    """Raised with every offending variable listed, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def setting(
    default: Any,
    doc: str,
    *,
    env: str,
    group: str,
    aliases: tuple[str, ...] = (),
    lo: float | None = None,
    hi: float | None = None,
    secret: bool = False,
    shown: str | None = None,
    example: str | None = None,
) -> Any:
    """One declaration. `shown`: the default as documented when it is derived from other settings;
    `example`: a value for .env.example when the default is empty."""
    return Field(
        default,
        validation_alias=AliasChoices(env, *aliases) if aliases else env,
        description=doc,
        ge=lo,
        le=hi,
        json_schema_extra={
            "env": env,
            "aliases": list(aliases),
            "group": group,
            "secret": secret,
            "shown": shown,
            "example": example,
        },
    )


_URL_HINT = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_HOST_ENTRY = re.compile(r"[a-z0-9.\-]+(:([0-9]{1,5}|\*))?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
Hosts = Annotated[tuple[str, ...], NoDecode]
_ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(:[0-9]{1,5})?")


class Declared(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    # general
    env: Literal["development", "production"] = setting(
        "development",
        "`production` requires DATABASE_URL, CELERY_BROKER_URL, AWS_S3_BUCKET (S3 backend) and"
        " JWT_SECRET, and never generates secrets",
        env="IMAGEPIPE_ENV",
        group="general",
    )
    home: Path | None = setting(
        None,
        "the project folder: a relative IMAGEPIPE_VAR_DIR is read from it, so every command finds the state"
        " `make run` uses whatever the working directory",
        env="IMAGEPIPE_HOME",
        group="general",
        shown="the folder of pyproject.toml above the working directory, else the checkout imagepipe runs from",
    )
    var_dir: Path = setting(
        Path("var"),
        "development state: SQLite file, broker folders, SeaweedFS data, generated secrets (relative: in the project folder)",
        env="IMAGEPIPE_VAR_DIR",
        group="general",
    )
    host: str = setting("127.0.0.1", "API bind address (imagepipe serve, make run)", env="HOST", group="general")
    port: int = setting(8000, "API port", env="PORT", group="general", lo=1, hi=65535)
    public_api_url: str = setting(
        "",
        "absolute base for URLs the API serves itself (local store)",
        env="PUBLIC_API_URL",
        group="general",
        example="https://images.example.com",
    )

    # database and broker
    database_url: str = setting(
        "",
        "any SQLAlchemy URL; PostgreSQL in production",
        env="DATABASE_URL",
        group="data",
        shown="sqlite:///var/imagepipe.db",
        example="postgresql+psycopg2://imagepipe:secret@127.0.0.1:5432/imagepipe",
    )
    broker_url: str = setting(
        "",
        "Celery broker; Redis in production (its visibility_timeout is set above the task hard limit)",
        env="CELERY_BROKER_URL",
        aliases=("REDIS_URL",),
        group="data",
        shown="filesystem:// (under var/broker)",
        example="redis://127.0.0.1:6379/0",
    )
    task_queue: str = setting("images", "the processing queue", env="CELERY_QUEUE", group="data")
    migration_queue: str = setting(
        "migration",
        "the legacy migration's queue; workers take from it only when the processing queue is empty",
        env="MIGRATION_QUEUE",
        group="data",
    )
    maintenance_queue: str = setting(
        "maintenance",
        "low-priority work (regenerating renditions after a spec change, repairs found by the orphan"
        " scan, the scheduled sweeps): taken only when the processing and migration queues are empty",
        env="MAINTENANCE_QUEUE",
        group="data",
    )
    legacy_url_prefix: str = setting(
        "/uploads/",
        "the path prefix of the legacy local URLs: the migration maps it to --source, and the API"
        " answers GET on it with a 301 to the migrated image",
        env="LEGACY_URL_PREFIX",
        group="general",
    )

    # object storage
    storage_backend: Literal["s3", "local"] = setting(
        "s3", "`s3`, or `local` (disk, served by the API under /media)", env="STORAGE_BACKEND", group="storage"
    )
    aws_region: str = setting("us-east-1", "the bucket's region", env="AWS_REGION", group="storage")
    aws_s3_bucket: str = setting(
        "",
        "bucket name (3-63 lowercase letters, digits, dots, hyphens)",
        env="AWS_S3_BUCKET",
        group="storage",
        shown="imagepipe (development)",
    )
    aws_access_key_id: str | None = setting(
        None,
        "set both keys or neither (then boto3's chain: instance role, profile); with neither and no endpoint"
        " in development, the embedded SeaweedFS is the store (127.0.0.1:SEAWEEDFS_S3_PORT, credentials generated in"
        " var/secrets/s3_credentials.json) for make run and every command",
        env="AWS_ACCESS_KEY_ID",
        group="storage",
    )
    aws_secret_access_key: str | None = setting(
        None, "the secret half of the access key", env="AWS_SECRET_ACCESS_KEY", group="storage", secret=True
    )
    aws_s3_endpoint_url: str | None = setting(
        None,
        "any S3-compatible server (path-style addressing is used then)",
        env="AWS_S3_ENDPOINT_URL",
        group="storage",
        example="http://127.0.0.1:8333",
    )
    aws_cloudfront_url: str | None = setting(
        None,
        "base of public rendition URLs when set",
        env="AWS_CLOUDFRONT_URL",
        group="storage",
        example="https://d111111abcdef8.cloudfront.net",
    )
    cloudfront_key_pair_id: str | None = setting(
        None,
        "with AWS_CLOUDFRONT_PRIVATE_KEY_PATH and AWS_CLOUDFRONT_URL: signed URLs are CloudFront-signed (RSA,"
        " canned policy) instead of S3-presigned",
        env="AWS_CLOUDFRONT_KEY_PAIR_ID",
        group="storage",
        example="K2JCJMDEHXQW5F",
    )
    cloudfront_private_key_path: Path | None = setting(
        None,
        "PEM file of the CloudFront key pair",
        env="AWS_CLOUDFRONT_PRIVATE_KEY_PATH",
        group="storage",
        example="/etc/imagepipe/cloudfront.pem",
    )
    aws_cloudfront_distribution_id: str | None = setting(
        None,
        "the distribution serving public/: every delete, takedown and rendition regeneration queues its paths for"
        " invalidation (CreateInvalidation, sent in batches by Celery beat)",
        env="AWS_CLOUDFRONT_DISTRIBUTION_ID",
        group="storage",
        example="E2QWRUHAPOMQZL",
    )
    aws_cloudfront_endpoint_url: str | None = setting(
        None,
        "another CloudFront API endpoint (tests: moto's server)",
        env="AWS_CLOUDFRONT_ENDPOINT_URL",
        group="storage",
    )
    cors_allowed_origins: Hosts = setting(
        (),
        "comma-separated origins whose pages may call the API (CORS, exact origins, no credentials) and upload"
        " straight to the bucket (presigned POST; applied by `imagepipe bucket setup` and `make run`)",
        env="CORS_ALLOWED_ORIGINS",
        group="storage",
        shown="the API's own origin (embedded store)",
        example="https://www.example.com,https://admin.example.com",
    )
    originals_archive_days: int = setting(
        90,
        "`imagepipe bucket setup` moves originals/ to S3 Glacier Instant Retrieval this many days after upload"
        " (0: never; stores without storage classes get a notice)",
        env="ORIGINALS_ARCHIVE_DAYS",
        group="storage",
        lo=0,
        hi=3650,
    )
    local_storage_dir: Path | None = setting(
        None, "root of the local backend", env="LOCAL_STORAGE_DIR", group="storage", shown="var/storage"
    )

    # secrets
    jwt_secret: str = setting(
        "",
        "at least 32 random characters; HS256 only",
        env="JWT_SECRET",
        group="secrets",
        secret=True,
        shown="generated under var/secrets (development)",
    )
    jwt_audience: str = setting(
        "imagepipe",
        "the `aud` every token must carry (the platform mints tokens for this service only)",
        env="JWT_AUDIENCE",
        group="secrets",
    )
    jwt_issuer: str = setting(
        "",
        "when set, the `iss` every token must carry (the platform's backend)",
        env="JWT_ISSUER",
        group="secrets",
        example="https://platform.example.com",
    )
    jwt_max_lifetime_s: int = setting(
        7 * 24 * 3600, "the longest a token may live (`exp - iat`); tokens without `iat` are refused",
        env="JWT_MAX_LIFETIME_S", group="secrets", lo=60, hi=366 * 24 * 3600,
    )  # fmt: skip
    signing_secret: str = setting(
        "",
        "signs local-store URLs and upload policies",
        env="SIGNING_SECRET",
        group="secrets",
        secret=True,
        shown="derived from JWT_SECRET",
    )
    callback_secret: str = setting(
        "",
        "HMAC key of X-Imagepipe-Signature; set it to rotate independently",
        env="CALLBACK_SECRET",
        group="secrets",
        secret=True,
        shown="derived from JWT_SECRET",
    )

    # limits (the pipeline's own are added from pipeline/limits.py)
    max_files_per_request: int = setting(
        50, "files in one form upload", env="MAX_FILES_PER_REQUEST", group="limits", lo=1, hi=1000
    )

    # uploads, callbacks, signed URLs
    upload_url_expires_s: int = setting(
        600,
        "lifetime of a direct upload's presigned POST; kept short (at most an hour): it cannot be revoked",
        env="UPLOAD_URL_EXPIRES_S",
        group="delivery",
        lo=60,
        hi=3600,
    )
    rate_limit_uploads_per_minute: int = setting(
        120,
        "per user: files (form uploads) and upload starts (direct) in any 60 s (sliding window); 0 turns it off",
        env="RATE_LIMIT_UPLOADS_PER_MINUTE",
        group="delivery",
        lo=0,
        hi=1_000_000,
    )
    rate_limit_redis_url: str | None = setting(
        None,
        "where the rate-limit counters live, shared by every API process; without Redis each process counts"
        " alone. If Redis stops answering the limiter lets requests through (and logs it)",
        env="RATE_LIMIT_REDIS_URL",
        aliases=("REDIS_URL",),
        group="delivery",
        shown="REDIS_URL, else the broker when it is Redis",
        example="redis://127.0.0.1:6379/1",
    )
    callback_allowed_hosts: Hosts = setting(
        (),
        "comma-separated hosts a callback_url may point at: `host` (ports 80 and 443), `host:port` or"
        " `host:*` (none: no callbacks)",
        env="CALLBACK_ALLOWED_HOSTS",
        group="delivery",
        example="hooks.example.com,crm.example.com",
    )
    callback_max_attempts: int = setting(
        8,
        "deliveries tried (backoff 2, 4, 8 ... 600 s) before a callback is failed",
        env="CALLBACK_MAX_ATTEMPTS",
        group="delivery",
        lo=1,
        hi=50,
    )

    # tasks and workers
    task_soft_time_limit_s: int = setting(
        120,
        "the soft limit cannot interrupt libvips inside one long C call; the image fails with processing_timeout either way",
        env="TASK_SOFT_TIME_LIMIT_S",
        group="tasks",
        lo=1,
        hi=86400,
    )
    task_time_limit_s: int = setting(
        180,
        "hard limit, must exceed the soft one: the pool process is killed",
        env="TASK_TIME_LIMIT_S",
        group="tasks",
        lo=1,
        hi=86400,
    )
    task_max_retries: int = setting(
        8,
        "retries of an image after a transient storage or database error, or after its worker process died"
        " under it; then the image fails",
        env="TASK_MAX_RETRIES",
        group="tasks",
        lo=0,
        hi=100,
    )
    worker_max_memory_mb: int = setting(
        512,
        "a pool process still resident above this after a task is replaced before its next image; 0 turns it off",
        env="WORKER_MAX_MEMORY_MB",
        group="tasks",
        lo=0,
        hi=1_048_576,
    )
    sweep_grace_s: int = setting(
        900,
        "imagepipe sweep: how old a pending or deleting image or a staging object must be before it counts as"
        " abandoned (an image still processing after twice the hard time limit too)",
        env="SWEEP_GRACE_S",
        group="tasks",
        lo=60,
        hi=7 * 24 * 3600,
    )
    metrics_dir: Path | None = setting(
        None,
        "where the API's and the workers' processes keep their Prometheus values (a sub-folder per running"
        " instance, api-<pid> or worker-<pid>; those of stopped instances are removed)",
        env="METRICS_DIR",
        group="observability",
        shown="var/metrics",
    )
    worker_metrics_port: int = setting(
        9808,
        "the worker's main process serves its pool's metrics on HOST:this port (0: no endpoint)",
        env="WORKER_METRICS_PORT",
        group="observability",
        lo=0,
        hi=65535,
    )
    metrics_token: str = setting(
        "",
        "GET /metrics (the API's, the worker's port) needs `Authorization: Bearer <this>` (Prometheus'"
        " `authorization` in its scrape config); required in production, optional in development",
        env="METRICS_TOKEN",
        group="secrets",
        secret=True,
    )
    sweep_interval_s: int = setting(
        300,
        "Celery beat runs each sweep (stuck images, deletions, expired uploads, staging leftovers) this often",
        env="SWEEP_INTERVAL_S",
        group="tasks",
        lo=30,
        hi=24 * 3600,
    )
    sweep_max_requeues: int = setting(
        3,
        "times the sweep re-queues an image stuck pending or processing before it fails it (processing_timeout)",
        env="SWEEP_MAX_REQUEUES",
        group="tasks",
        lo=0,
        hi=100,
    )
    cdn_invalidation_batch: int = setting(
        1000,
        "paths per CreateInvalidation (CloudFront takes up to 1 000 a request, 3 000 in flight)",
        env="CDN_INVALIDATION_BATCH",
        group="tasks",
        lo=1,
        hi=1000,
    )
    cdn_invalidation_interval_s: int = setting(
        60,
        "how often Celery beat sends the queued CDN invalidations",
        env="CDN_INVALIDATION_INTERVAL_S",
        group="tasks",
        lo=5,
        hi=3600,
    )
    access_log_prefix: str | None = setting(
        None,
        "where S3 server access logs and/or CloudFront standard logs are delivered (s3://bucket/prefix/, or a prefix"
        " of AWS_S3_BUCKET): Celery beat ingests new files every USAGE_INGEST_INTERVAL_S",
        env="ACCESS_LOG_PREFIX",
        group="cost",
        example="s3://example-logs/imagepipe/",
    )
    usage_ingest_interval_s: int = setting(
        900, "how often Celery beat ingests new access log files", env="USAGE_INGEST_INTERVAL_S", group="cost", lo=60, hi=86400
    )
    rum_per_minute: int = setting(
        30,
        "load-timing beacons (POST /api/v1/rum) accepted per client address a minute; 0 turns the endpoint off",
        env="RUM_PER_MINUTE",
        group="cost",
        lo=0,
        hi=100_000,
    )
    prices_as_of: str = setting("2026-12-01", "the date the prices below were read", env="PRICES_AS_OF", group="cost")
    price_storage_gb_month: float = setting(
        0.023, "S3 Standard, USD per GB-month (first 50 TB)", env="PRICE_STORAGE_GB_MONTH", group="cost", lo=0, hi=100
    )
    price_archive_gb_month: float = setting(
        0.004, "S3 Glacier Instant Retrieval, USD per GB-month", env="PRICE_ARCHIVE_GB_MONTH", group="cost", lo=0, hi=100
    )
    price_s3_egress_gb: float = setting(
        0.09,
        "S3 data transfer out to the internet, USD per GB (first 10 TB)",
        env="PRICE_S3_EGRESS_GB",
        group="cost",
        lo=0,
        hi=100,
    )
    price_cdn_egress_gb: float = setting(
        0.085,
        "CloudFront data transfer out, USD per GB (North America/Europe, first 10 TB)",
        env="PRICE_CDN_EGRESS_GB",
        group="cost",
        lo=0,
        hi=100,
    )
    price_s3_get_10k: float = setting(
        0.004, "S3 GET requests, USD per 10 000", env="PRICE_S3_GET_10K", group="cost", lo=0, hi=100
    )
    price_cdn_requests_10k: float = setting(
        0.01, "CloudFront HTTPS requests, USD per 10 000", env="PRICE_CDN_REQUESTS_10K", group="cost", lo=0, hi=100
    )
    disclosure_text: str = setting(
        "Virtually staged",
        "shown beside an altered photo (RESO MediaAlteration) with a link to its unaltered original: public view,"
        " RESO feed and web client",
        env="DISCLOSURE_TEXT",
        group="syndication",
    )
    compliance_profile: str = setting(
        "default",
        "the compliance profile a gallery's warnings are checked against (services/syndication/compliance.py lists them)",
        env="COMPLIANCE_PROFILE",
        group="syndication",
    )
    import_max_urls: int = setting(
        20, "URLs per POST /api/v1/{entity}/{id}/imports", env="IMPORT_MAX_URLS", group="syndication", lo=1, hi=200
    )
    fetch_allowed_networks: Hosts = setting(
        (),
        "FOR TESTS ONLY: networks (CIDR) the URL fetcher may reach although special-purpose (loopback), on any port;"
        " empty in production",
        env="FETCH_ALLOWED_NETWORKS",
        group="syndication",
    )
    feed_urls: str | None = setting(
        None,
        "RESO Web API Media feeds Celery beat replicates every FEED_SYNC_INTERVAL_S (space-separated URLs of the"
        " Media resource); `imagepipe feed sync --url` runs one by hand",
        env="FEED_URLS",
        group="syndication",
        example="https://api.example-mls.com/reso/odata/Media",
    )
    feed_sync_interval_s: int = setting(
        900, "how often Celery beat syncs each of FEED_URLS", env="FEED_SYNC_INTERVAL_S", group="syndication", lo=60, hi=86400
    )
    feed_full_compare_hours: int = setting(
        24,
        "how often a sync compares every key of a feed with ours (media that vanished from it are deleted)",
        env="FEED_FULL_COMPARE_HOURS",
        group="syndication",
        lo=1,
        hi=24 * 30,
    )
    reuse_max_distance: int = setting(
        15,
        "an upload this close (PDQ Hamming distance, of 256 bits) to a photo of another listing its uploader cannot"
        " write is a reuse finding; lookups are exact to any distance, and cost more past 15 (docs/operations.md)",
        env="REUSE_MAX_DISTANCE",
        group="moderation",
        lo=0,
        hi=63,
    )
    blocklist_max_distance: int = setting(
        31,
        "an upload this close to a taken-down photo fails blocked_image",
        env="BLOCKLIST_MAX_DISTANCE",
        group="moderation",
        lo=0,
        hi=63,
    )
    pdq_min_quality: int = setting(
        50,
        "pictures whose PDQ quality is lower (flat, blank, a logo) are never matched",
        env="PDQ_MIN_QUALITY",
        group="moderation",
        lo=0,
        hi=100,
    )
    orphan_grace_s: int = setting(
        86400,
        "the orphan scan never touches an object younger than this (uploads in flight, a worker between writing and recording)",
        env="ORPHAN_GRACE_S",
        group="tasks",
        lo=60,
        hi=90 * 24 * 3600,
    )
    orphan_scan_hour: int = setting(
        3,
        "hour (UTC) of the daily dry-run orphan scan that Celery beat starts; -1 turns it off",
        env="ORPHAN_SCAN_HOUR",
        group="tasks",
        lo=-1,
        hi=23,
    )
    store_put_concurrency: int = setting(
        4,
        "an image's original and renditions are written this many at a time (1: one after the other)",
        env="STORE_PUT_CONCURRENCY",
        group="tasks",
        lo=1,
        hi=16,
    )
    worker_concurrency: int = setting(
        0,
        "worker processes; 0: one per CPU the worker may use (its CPU affinity and cgroup quota), which measured"
        " best (docs/configuration.md, Sizing workers)",
        env="WORKER_CONCURRENCY",
        group="tasks",
        lo=0,
        hi=512,
    )
    api_workers: int = setting(2, "gunicorn worker processes of the API", env="API_WORKERS", group="tasks", lo=1, hi=512)

    # timeouts
    store_connect_timeout_s: float = setting(
        2.0, "connecting to the object store", env="STORE_CONNECT_TIMEOUT_S", group="timeouts", lo=0.1, hi=60
    )
    store_read_timeout_s: float = setting(
        5.0,
        "each socket read or write of a store call: a HEAD or DELETE fails after it, a 25 MiB transfer may take"
        " longer as long as bytes keep moving",
        env="STORE_READ_TIMEOUT_S",
        group="timeouts",
        lo=0.1,
        hi=300,
    )
    store_max_attempts: int = setting(
        4,
        "tries of a store call in a worker (jittered backoff); the API tries twice, to answer within its budget",
        env="STORE_MAX_ATTEMPTS",
        group="timeouts",
        lo=1,
        hi=10,
    )
    store_request_deadline_s: float = setting(
        8.0,
        "the API's budget for one store call, its retry included: a second try that could run past it (connect"
        " + read timeout) is not started, so a frozen store answers 503 after one try (a fast failure is still"
        " tried again)",
        env="STORE_REQUEST_DEADLINE_S",
        group="timeouts",
        lo=0.5,
        hi=120,
    )
    db_connect_timeout_s: float = setting(
        3.0, "connecting to PostgreSQL", env="DB_CONNECT_TIMEOUT_S", group="timeouts", lo=0.5, hi=60
    )
    db_statement_timeout_s: float = setting(
        10.0,
        "one statement, enforced by PostgreSQL and by the client (a frozen server cannot enforce its own)",
        env="DB_STATEMENT_TIMEOUT_S",
        group="timeouts",
        lo=0.5,
        hi=600,
    )
    db_pool_timeout_s: float = setting(
        5.0, "waiting for a free connection of the pool", env="DB_POOL_TIMEOUT_S", group="timeouts", lo=0.1, hi=60
    )
    broker_visibility_timeout_s: int = setting(
        3600,
        "a task a worker took but never acknowledged (its main process was killed) is delivered again after"
        " this (the workers look every 10 s); must exceed TASK_TIME_LIMIT_S",
        env="BROKER_VISIBILITY_TIMEOUT_S",
        group="timeouts",
        lo=10,
        hi=7 * 24 * 3600,
    )
    broker_timeout_s: float = setting(
        3.0, "connecting to and talking with the broker (Redis)", env="BROKER_TIMEOUT_S", group="timeouts", lo=0.5, hi=60
    )
    callback_timeout_s: float = setting(
        10.0, "one callback delivery (connect and answer)", env="CALLBACK_TIMEOUT_S", group="timeouts", lo=1, hi=120
    )
    api_threads: int = setting(
        8,
        "threads per API process (gunicorn gthread): a request waiting on the network holds a thread, not the process",
        env="API_THREADS",
        group="timeouts",
        lo=1,
        hi=256,
    )
    api_timeout_s: int = setting(
        60,
        "gunicorn's worker timeout: a process that stops answering its arbiter this long is replaced; must"
        " exceed the request budget (docs/reliability.md)",
        env="API_TIMEOUT_S",
        group="timeouts",
        lo=10,
        hi=3600,
    )

    # make run only
    seaweedfs_s3_port: int = setting(
        8333, "S3 port of the embedded SeaweedFS", env="SEAWEEDFS_S3_PORT", group="devrun", lo=1, hi=65535
    )
    seaweedfs_base_port: int = setting(
        18330, "first of SeaweedFS's internal ports", env="SEAWEEDFS_BASE_PORT", group="devrun", lo=1, hi=65000
    )
    flower_port: int = setting(5555, "Flower's port (on HOST)", env="FLOWER_PORT", group="observability", lo=1, hi=65535)
    flower_user: str = setting("admin", "Flower's basic-auth user", env="FLOWER_USER", group="observability")
    flower_password: str = setting(
        "",
        "Flower's basic-auth password (Flower never starts without one)",
        env="FLOWER_PASSWORD",
        group="secrets",
        secret=True,
        shown="generated under var/secrets (development)",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, value: Any, info) -> Any:
        """Environment text to the field's type: trimmed, case-folded choices, comma lists,
        `1_000` style numbers."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        kind = kind_of(cls.model_fields[info.field_name].annotation)
        if kind == "list":
            items = tuple(dict.fromkeys(i.strip().lower() for i in value.split(",") if i.strip()))
            return () if items == ("none",) else items
        if kind == "int":
            return value.replace("_", "")
        if kind in ("choice", "bool"):
            return value.lower()
        return value

    @field_validator("compliance_profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        from services.syndication.compliance import profile_names

        if value not in profile_names():
            raise ValueError(f"must be one of {', '.join(profile_names())}, got {value!r}")
        return value

    @field_validator("fetch_allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"must list networks like 127.0.0.1/32, got {entry!r}") from None
        return value

    @field_validator("callback_allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [h for h in value if not _HOST_ENTRY.fullmatch(h)]
        if bad:
            raise ValueError(f"must list host, host:port or host:* entries, got {', '.join(bad)!r}")
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if o != "*" and not _ORIGIN.fullmatch(o)]
        if bad:
            raise ValueError(
                f"must list origins like https://www.example.com (scheme, host, optional port, no path), got {', '.join(bad)!r}"
            )
        return value

    @field_validator("database_url", "broker_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not _URL_HINT.match(value):
            raise ValueError(f"must be a URL like postgresql+psycopg2://user:pass@host/db or redis://host:6379/0, got {value!r}")
        return value

    @field_validator("aws_s3_endpoint_url", "aws_cloudfront_url", "public_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("aws_s3_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value and not _BUCKET.fullmatch(value):
            raise ValueError(f"must be 3-63 lowercase letters, digits, dots or hyphens, got {value!r}")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _jwt(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError(
                "must be at least 32 characters (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        environ = _ENVIRON.get()
        return (init_settings, env_settings) if environ is None else (init_settings, _Mapping(settings_cls, environ))


_ENVIRON: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("imagepipe_environ", default=None)


class _Mapping(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of os.environ."""

    def __init__(self, settings_cls, environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self):
        # case-sensitive, and an empty value is unset (env_ignore_empty), as in the real source
        return {k: v for k, v in self._environ.items() if v != ""}


def pipeline_fields(declared: type, group: str) -> dict[str, tuple[Any, FieldInfo]]:
    hints = typing.get_type_hints(declared)
    out = {}
    for f in dataclasses.fields(declared):
        annotation = hints[f.name]
        if typing.get_origin(annotation) is tuple:
            annotation = Annotated[annotation, NoDecode]
        meta = f.metadata
        out[f.name] = (
            annotation,
            setting(f.default, meta["doc"], env=f.name.upper(), group=group, lo=meta.get("lo"), hi=meta.get("hi")),
        )
    return out


def extra(field: FieldInfo) -> dict[str, Any]:
    """What `setting(...)` declared beside pydantic's own: env, aliases, group, secret, shown, example."""
    declared = field.json_schema_extra
    assert isinstance(declared, dict), "every setting is declared with setting(...)"
    return typing.cast(dict[str, Any], declared)


def env_name(field: FieldInfo) -> str:
    return str(extra(field)["env"])


def kind_of(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return kind_of(args[0])
    if origin is tuple:
        return "list"
    if origin is Literal:
        return "choice"
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        return kind_of(inner[0]) if len(inner) == 1 else "text"
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "number"
    return "text"


def describe(field: FieldInfo) -> str:
    """What a value of this setting looks like, for error messages and the docs."""
    kind = kind_of(field.annotation)
    if kind == "int":
        lo = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        hi = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        return f"a whole number between {lo} and {hi}" if lo is not None and hi is not None else "a whole number"
    if kind == "number":
        lo = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        hi = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        return f"a number of seconds between {lo} and {hi}"
    if kind == "bool":
        return "true or false"
    if kind == "choice":
        return "one of " + ", ".join(choices(field.annotation))
    if kind == "list":
        listed = choices(field.annotation)
        return f"a comma-separated list of {', '.join(listed)} (or none)" if listed else "a comma-separated list"
    return "text"


def choices(annotation: Any) -> list[str]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        return choices(args[0])
    if typing.get_origin(annotation) is Literal:
        return list(args)
    if typing.get_origin(annotation) is tuple and args:
        return choices(args[0])
    return []
