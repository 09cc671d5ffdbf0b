"""SQLAlchemy 2 models. The schema itself is owned by Alembic (migrations/); these mirror it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """`TIMESTAMP WITH TIME ZONE` that always comes back timezone-aware, in UTC.

    PostgreSQL returns aware values; SQLite (the embedded default) keeps no offset and
    returns naive ones, which would reach the API without an offset (not RFC 3339) and fail
    comparisons with aware times. Values are stored in UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def new_job_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class ImageStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"  # hidden from listings; a task is removing its objects, then the row
    LEGACY = "legacy"  # a pre-S3 row with a local url, not yet migrated
    MISSING = "missing"  # the orphan scan found its original gone from the store: upload it again


UNFINISHED = (ImageStatus.PENDING, ImageStatus.PROCESSING)


class JobStatus(StrEnum):
    """Derived from a job's images (services/jobs/status.py), never stored."""

    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL})


class CallbackState(StrEnum):
    PENDING = "pending"  # due once the job ends
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt spent, or the URL is no longer allowed


class MigrationRunStatus(StrEnum):
    ENQUEUED = "enqueued"  # its items are queued (or done): workers are moving them
    ROLLED_BACK = "rolled_back"


class MigrationItemStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"  # the file is missing or refused; the image stays legacy
    SKIPPED = "skipped"  # no longer legacy when its task ran (migrated by another run, deleted)
    ROLLED_BACK = "rolled_back"


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_entity", "entity_type", "entity_id", "created_at"),
        Index("ix_images_s3_key", "s3_key"),
        Index("ix_images_status", "status"),
        Index("ix_images_entity_sha256", "entity_type", "entity_id", "sha256"),
        Index("ix_images_entity_position", "entity_type", "entity_id", "position", "id"),
        Index("ix_images_url", "url"),
        Index("ix_images_staging_key", "staging_key"),
        Index("ix_images_original_of", "original_of"),
        Index("ix_images_updated", "updated_at", "id"),  # the RESO feed's replication order
        # One cover per listing (migration 0010); services/images/manage.py locks the listing first.
        Index(
            "uq_images_one_cover",
            "entity_type",
            "entity_id",
            unique=True,
            postgresql_where=text("is_primary"),
            sqlite_where=text("is_primary"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=ImageStatus.PENDING)  # an ImageStatus
    uploader_id: Mapped[int | None] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    declared_content_type: Mapped[str | None] = mapped_column(String(100))
    staging_key: Mapped[str | None] = mapped_column(String(500))
    # The seed's S3 columns (6.1/6.2).
    url: Mapped[str | None] = mapped_column(String(500))  # legacy local url
    s3_key: Mapped[str | None] = mapped_column(String(500))
    s3_bucket: Mapped[str | None] = mapped_column(String(100))
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    medium_url: Mapped[str | None] = mapped_column(String(500))
    large_url: Mapped[str | None] = mapped_column(String(500))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(String(50))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    has_alpha: Mapped[bool | None] = mapped_column()
    blurhash: Mapped[str | None] = mapped_column(String(100))
    dominant_color: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb"
    frames: Mapped[int | None] = mapped_column(Integer)  # > 1: animated; the first frame is rendered
    # From EXIF, for the database only (never in a public file).
    captured_at: Mapped[str | None] = mapped_column(String(32))
    camera: Mapped[str | None] = mapped_column(String(200))
    copyright: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)  # gallery order, ascending
    alt_text: Mapped[str | None] = mapped_column(String(500))
    is_primary: Mapped[bool] = mapped_column(default=False)
    legacy_table: Mapped[str | None] = mapped_column(String(30))
    legacy_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    requeues: Mapped[int] = mapped_column(Integer, default=0)  # by the stuck-image sweep; past a bound it fails
    # How many times a worker has claimed it; the latest claim owns its processing (services/images/process.py).
    claims: Mapped[int] = mapped_column(Integer, default=0)
    # Who could write what when it was uploaded: the token's subject, admin flag and entity grants
    # (JSON), so a perceptual match to another listing is judged against them (services/moderation/reuse.py).
    uploader_grants: Mapped[str | None] = mapped_column(Text)
    # RESO Media fields (services/syndication/media.py has their vocabularies; migration 0013).
    category: Mapped[str | None] = mapped_column(String(30))  # MediaCategory
    image_of: Mapped[str | None] = mapped_column(String(40))  # ImageOf
    caption: Mapped[str | None] = mapped_column(String(50))  # ShortDescription
    description: Mapped[str | None] = mapped_column(String(1024))  # LongDescription
    permission: Mapped[str] = mapped_column(String(20), default="Public", server_default="Public")
    alteration: Mapped[str | None] = mapped_column(String(400))  # MediaAlteration, comma-separated; None: none
    original_of: Mapped[int | None] = mapped_column(Integer)  # an altered image's unaltered original
    source_url: Mapped[str | None] = mapped_column(String(2048))  # imported from (never in the public view)

    renditions: Mapped[list[Rendition]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="Rendition.id"
    )
    perceptual_hash: Mapped[ImageHash | None] = relationship(cascade="all, delete-orphan")
    # An altered image's unaltered original (its disclosure links there).
    original: Mapped[Image | None] = relationship(
        primaryjoin="foreign(Image.original_of) == remote(Image.id)", viewonly=True, lazy="select"
    )
    reuse_findings: Mapped[list[ReuseFinding]] = relationship(
        foreign_keys="ReuseFinding.image_id", order_by="ReuseFinding.id", viewonly=True
    )


class Rendition(Base):
    __tablename__ = "renditions"
    __table_args__ = (
        UniqueConstraint("image_id", "name", "format", name="uq_renditions_image_name_format"),
        Index("ix_renditions_image_id", "image_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    entity_type: Mapped[str | None] = mapped_column(String(20))  # the image's, for statistics without a join
    name: Mapped[str] = mapped_column(String(30))
    format: Mapped[str] = mapped_column(String(10))
    spec: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(500), unique=True)  # uq_renditions_key
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    image: Mapped[Image] = relationship(back_populates="renditions")


class Job(Base):
    """A request's unit of work. Its status is derived from its images, so it can never
    disagree with them and survives worker restarts and result-backend expiry."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    kind: Mapped[str] = mapped_column(String(20), default="upload")
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_state: Mapped[str | None] = mapped_column(String(20))  # a CallbackState
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    images: Mapped[list[Image]] = relationship(secondary="job_images", order_by="Image.id")


class JobImage(Base):
    __tablename__ = "job_images"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True)


class Upload(Base):
    """A direct-to-store upload: created with a presigned POST, completed into an image + job."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_staging_key", "staging_key"),
        Index("ix_uploads_expires", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    staging_key: Mapped[str] = mapped_column(String(500))
    callback_url: Mapped[str | None] = mapped_column(String(2000))  # given to the job at completion
    sha256: Mapped[str | None] = mapped_column(String(64))  # declared by the client, pinned in the POST policy
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MigrationRun(Base):
    """One `imagepipe migrate run`: what it was asked, and its items."""

    __tablename__ = "migration_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    source_dir: Mapped[str] = mapped_column(String(1000))
    entity_type: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))  # a MigrationRunStatus
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # already migrated when the run started
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    rolled_back_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MigrationItem(Base):
    """One legacy image of a run. `before` is the image row as the run found it (JSON), which is
    what a rollback restores, column by column."""

    __tablename__ = "migration_items"
    __table_args__ = (
        Index("ix_migration_items_run_status", "run_id", "status"),
        Index("ix_migration_items_image", "image_id"),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("migration_runs.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # a MigrationItemStatus
    entity_type: Mapped[str] = mapped_column(String(20))
    source_path: Mapped[str | None] = mapped_column(String(1000))
    source_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    bytes_written: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(Text)
    before: Mapped[str] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ScanStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StorageScan(Base):
    """One orphan scan (services/storage_admin/orphans.py): its scope, progress, counts and where its complete
    report is stored."""

    __tablename__ = "storage_scans"
    __table_args__ = (Index("ix_storage_scans_created", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    dry_run: Mapped[bool] = mapped_column()
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=ScanStatus.QUEUED)  # a ScanStatus
    requested_by: Mapped[str | None] = mapped_column(String(50))  # "user:7", "cli", "schedule"
    grace_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    objects_listed: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_listed: Mapped[int] = mapped_column(BigInteger, default=0)
    expected_objects: Mapped[int | None] = mapped_column(BigInteger)  # what the database knows of: progress
    counts: Mapped[str | None] = mapped_column(Text)  # JSON
    samples: Mapped[str | None] = mapped_column(Text)  # JSON: the first keys of each finding
    report_key: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)


class StorageUsage(Base):
    """What the images and renditions tables hold, summed: kept by database triggers (migration
    0008) that append one signed delta row per changed (day, entity type, kind, name, format,
    status), and compacted by a sweep (services/storage_admin/stats.py). The statistics sum this small table
    instead of scanning a million image rows."""

    __tablename__ = "storage_usage"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    day: Mapped[date | None] = mapped_column(Date)  # the row's created_at, UTC
    entity_type: Mapped[str | None] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))  # image | rendition
    name: Mapped[str] = mapped_column(String(30), default="")  # rendition name
    format: Mapped[str] = mapped_column(String(10), default="")  # rendition format
    status: Mapped[str] = mapped_column(String(20), default="")  # image status
    objects: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class StorageScanObject(Base):
    """The bucket listing of a running scan, a page at a time, so the comparison with the
    database is a query and the scanning process holds one page, whatever the bucket's size."""

    __tablename__ = "storage_scan_objects"

    scan_id: Mapped[str] = mapped_column(ForeignKey("storage_scans.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    last_modified: Mapped[datetime | None] = mapped_column(UtcDateTime())


# -- Perceptual hashes: lifted photos and the takedown blocklist --------------------------------
# PDQ's 256 bits kept whole (hex) and as 16 slots of 16 bits, each indexed: two hashes within
# Hamming distance 15 agree on at least one slot (pigeonhole), so a lookup ORs the 16 slot
# equalities and checks the exact distance of the few candidates (multi-index hashing).
PDQ_SLOTS = 16


class ImageHash(Base):
    __tablename__ = "image_hashes"
    __table_args__ = tuple(Index(f"ix_image_hashes_s{i}", f"s{i}") for i in range(PDQ_SLOTS))

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    pdq: Mapped[str] = mapped_column(String(64))  # hex
    quality: Mapped[int] = mapped_column(Integer)  # PDQ's 0..100; below PDQ_MIN_QUALITY never matched
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    s0: Mapped[int] = mapped_column(Integer)
    s1: Mapped[int] = mapped_column(Integer)
    s2: Mapped[int] = mapped_column(Integer)
    s3: Mapped[int] = mapped_column(Integer)
    s4: Mapped[int] = mapped_column(Integer)
    s5: Mapped[int] = mapped_column(Integer)
    s6: Mapped[int] = mapped_column(Integer)
    s7: Mapped[int] = mapped_column(Integer)
    s8: Mapped[int] = mapped_column(Integer)
    s9: Mapped[int] = mapped_column(Integer)
    s10: Mapped[int] = mapped_column(Integer)
    s11: Mapped[int] = mapped_column(Integer)
    s12: Mapped[int] = mapped_column(Integer)
    s13: Mapped[int] = mapped_column(Integer)
    s14: Mapped[int] = mapped_column(Integer)
    s15: Mapped[int] = mapped_column(Integer)


class ReuseFinding(Base):
    """An image that matches (perceptually) an image of another listing its uploader could not
    write: a possibly lifted photo. Recorded, never blocking (the platform decides)."""

    __tablename__ = "reuse_findings"
    __table_args__ = (
        Index("ix_reuse_findings_created_at", "created_at"),
        Index("ix_reuse_findings_image_id", "image_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    other_image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    other_entity_type: Mapped[str] = mapped_column(String(20))
    other_entity_id: Mapped[int] = mapped_column(BigInteger)
    distance: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class BlocklistEntry(Base):
    """A picture taken down: an upload within BLOCKLIST_MAX_DISTANCE of its hash (or its mirror's)
    fails `blocked_image` before a rendition is written. The image it came from is gone; its
    listing and the reason stay."""

    __tablename__ = "blocklist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pdq: Mapped[str] = mapped_column(String(64))
    quality: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    source_image_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the image is deleted
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CdnInvalidation(Base):
    """The outbox of CDN invalidations: a public path whose cached copy must go (an image deleted,
    taken down or rendered anew), queued in the transaction that changed it and sent by the beat
    task (services/infra/cdn.py) in batches, each batch one CreateInvalidation whose
    CallerReference is the batch id (a retried send is the same invalidation)."""

    __tablename__ = "cdn_invalidations"
    __table_args__ = (
        Index(
            "ix_cdn_invalidations_pending",
            "queued_at",
            sqlite_where=text("sent_at IS NULL"),
            postgresql_where=text("sent_at IS NULL"),
        ),
        Index("ix_cdn_invalidations_batch_id", "batch_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1100))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    batch_id: Mapped[str | None] = mapped_column(String(36))  # given when a send starts; kept for a retry
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    invalidation_id: Mapped[str | None] = mapped_column(String(64))  # CloudFront's


class AuditEntry(Base):
    """Who did what to which image or listing, when, in which request. Written in the same
    transaction as the action; never updated or deleted by the application (PostgreSQL refuses
    both with a trigger, migration 0011)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_image_id", "image_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))  # user:<token subject>, or cli:<login>
    action: Mapped[str] = mapped_column(String(40))
    image_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the row outlives the image
    entity_type: Mapped[str | None] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    request_id: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)  # JSON


class AccessLogFile(Base):
    """An access log file `imagepipe usage ingest` has read (services/delivery/usage.py): recorded
    in the transaction that adds its counts, unique per location, so no file is counted twice."""

    __tablename__ = "access_log_files"
    __table_args__ = (UniqueConstraint("location", "name", name="uq_access_log_files_location_name"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    location: Mapped[str] = mapped_column(String(300))  # s3://bucket/prefix/ or a folder
    name: Mapped[str] = mapped_column(String(1024))  # key or path relative to the location
    format: Mapped[str] = mapped_column(String(20))  # s3 | cloudfront | unknown
    bytes: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)  # lines that were requests for our objects
    malformed: Mapped[int] = mapped_column(Integer)
    ingested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)


class EgressUsage(Base):
    """Bytes sent and requests per day × source (s3 | cloudfront) × entity type × rendition
    (`original` for originals) × format, from access logs: delta rows per ingested file, summed
    when read and merged by the usage sweep. `hits`: CloudFront's cache hits (Hit, RefreshHit)."""

    __tablename__ = "egress_usage"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(20))
    entity_type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(30))
    format: Mapped[str] = mapped_column(String(10))
    requests: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(BigInteger)


class Feed(Base):
    """A RESO Media feed this platform replicates (services/syndication/feed.py): where it is, the
    originating system its keys belong to, the entity type its records' ResourceRecordKey names,
    and how far it has been read (the watermark: the last ModificationTimestamp fully applied)."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    system: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(20))
    watermark: Mapped[datetime | None] = mapped_column(UtcDateTime())
    full_compare_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_report: Mapped[str | None] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class FeedMedia(Base):
    """One record of a feed, keyed by (originating system, MediaKey): the image it is (None once
    deleted) and the timestamps last applied."""

    __tablename__ = "feed_media"
    __table_args__ = (
        UniqueConstraint("system", "media_key", name="uq_feed_media_system_key"),
        Index("ix_feed_media_feed", "feed_id"),
        Index("ix_feed_media_image", "image_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    system: Mapped[str] = mapped_column(String(100))
    media_key: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[int | None] = mapped_column(Integer)
    resource_record_key: Mapped[str | None] = mapped_column(String(255))
    media_url: Mapped[str | None] = mapped_column(String(2048))
    media_modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    modified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
