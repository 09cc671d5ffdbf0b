"""The bucket as imagepipe needs it, as data: `imagepipe bucket setup` applies it (creating the
bucket when missing), `imagepipe bucket check` reports what differs, and
`imagepipe bucket policy --print-iam` prints what the application's own credentials need.

- Policy: anonymous `s3:GetObject` on `public/*` and nothing else (originals, staging and scan
  reports stay private; signed URLs reach them).
- CORS: the configured origins (CORS_ALLOWED_ORIGINS) may POST (a browser's presigned direct
  upload) and GET/HEAD; nobody else.
- Lifecycle: `staging/` objects expire after two days (a staged upload is processed in seconds; two
  days cover a weekend's outage), incomplete multipart uploads are aborted after seven, and
  `originals/` move to S3 Glacier Instant Retrieval after ORIGINALS_ARCHIVE_DAYS (0: never). The
  originals are ~80 % of the bytes and are read again only to regenerate renditions or take a photo
  down; Glacier IR keeps them a millisecond read away at a sixth of the price (docs/operations.md
  "Cost and delivery"). A store without storage classes (SeaweedFS answers NotImplemented) gets
  the other rules and a notice, and `check` reports the missing transition as a notice, not drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from services.images.keys import ORIGINALS_PREFIX, REPORTS_PREFIX, STAGING_PREFIX
from services.infra.settings import Settings
from storage import PUBLIC_PREFIX
from storage.base import BucketAdmin, PermanentStorageError
from storage.s3 import anonymous_read_policy

PARTS = ("policy", "cors", "lifecycle")
STAGING_EXPIRY_DAYS = 2
MULTIPART_ABORT_DAYS = 7
ARCHIVE_RULE = "imagepipe-archive-originals"
ARCHIVE_CLASS = "GLACIER_IR"
NO_TRANSITIONS = (
    "this store refuses storage-class transitions (NotImplemented; SeaweedFS has no storage classes):"
    " originals/ stay in their class, the other lifecycle rules are applied"
)


def desired(settings: Settings) -> dict:
    """What each part of the bucket's configuration must be."""
    cors = []
    if settings.cors_allowed_origins:
        cors.append(
            {
                "ID": "imagepipe-browser-uploads",
                "AllowedOrigins": list(settings.cors_allowed_origins),
                "AllowedMethods": ["GET", "HEAD", "POST"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3600,
            }
        )
    lifecycle: list[dict[str, Any]] = [
        {
            "ID": "imagepipe-expire-staging",
            "Filter": {"Prefix": STAGING_PREFIX},
            "Status": "Enabled",
            "Expiration": {"Days": STAGING_EXPIRY_DAYS},
        },
        {
            "ID": "imagepipe-abort-multipart",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": MULTIPART_ABORT_DAYS},
        },
    ]
    if settings.originals_archive_days:
        lifecycle.append(
            {
                "ID": ARCHIVE_RULE,
                "Filter": {"Prefix": ORIGINALS_PREFIX},
                "Status": "Enabled",
                "Transitions": [{"Days": settings.originals_archive_days, "StorageClass": ARCHIVE_CLASS}],
            }
        )
    return {"policy": anonymous_read_policy(settings.aws_s3_bucket, PUBLIC_PREFIX), "cors": cors or None, "lifecycle": lifecycle}


def _canonical(part: str, value):
    """Comparable form: servers reorder keys and lists, add defaults, drop IDs, turn one-element
    lists into strings (AWS does for policies)."""
    if value is None or value == []:
        return None
    if part == "policy":
        statements = []
        for st in value.get("Statement", []):

            def as_set(v):
                return sorted([v] if isinstance(v, str) else list(v or []))

            principal = st.get("Principal")
            if isinstance(principal, dict) and set(principal) == {"AWS"} and as_set(principal["AWS"]) == ["*"]:
                principal = "*"
            statements.append(
                (
                    st.get("Effect"),
                    json.dumps(principal, sort_keys=True),
                    tuple(as_set(st.get("Action"))),
                    tuple(as_set(st.get("Resource"))),
                    json.dumps(st.get("Condition"), sort_keys=True),
                )
            )
        return sorted(statements)
    if part == "cors":
        return sorted(
            (
                tuple(sorted(r.get("AllowedOrigins", []))),
                tuple(sorted(r.get("AllowedMethods", []))),
                tuple(sorted(r.get("AllowedHeaders", []))),
                tuple(sorted(r.get("ExposeHeaders", []))),
                r.get("MaxAgeSeconds"),
            )
            for r in value
        )
    rules = []
    for r in value:
        if r.get("Status") != "Enabled":
            continue
        prefix = (r.get("Filter") or {}).get("Prefix", r.get("Prefix", ""))
        expiry = (r.get("Expiration") or {}).get("Days")
        abort = (r.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
        moves = tuple(sorted((t.get("Days"), t.get("StorageClass")) for t in r.get("Transitions") or []))
        rules.append((prefix, expiry, abort, moves))
    return sorted(rules, key=repr) or None


def _without_transitions(rules: list[dict]) -> list[dict]:
    return [r for r in rules if not r.get("Transitions")]


@dataclass
class Difference:
    part: str  # bucket | policy | cors | lifecycle
    problem: str  # missing | differs | extra | no_transition (a notice: not drift)
    actual: object = None
    wanted: object = None

    @property
    def notice(self) -> bool:
        return self.problem == "no_transition"

    def describe(self) -> str:
        if self.part == "bucket":
            return "bucket: does not exist"
        if self.notice:
            return (
                "lifecycle: originals/ are not archived (no transition rule; a store without storage classes,"
                " such as SeaweedFS, refuses one; on S3 `imagepipe bucket setup` adds it)"
            )
        if self.problem == "missing":
            return f"{self.part}: not set"
        if self.problem == "extra":
            return f"{self.part}: set on the bucket but imagepipe wants none ({json.dumps(self.actual)})"
        return f"{self.part}: differs\n    have: {json.dumps(self.actual)}\n    want: {json.dumps(self.wanted)}"


@dataclass
class Plan:
    bucket: str
    differences: list[Difference] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing to change but notices (which `setup` tries again)."""
        return all(d.notice for d in self.differences)


def check(store: BucketAdmin, settings: Settings) -> Plan:
    """What is missing or different on the bucket, part by part."""
    plan = Plan(store.bucket)
    want = desired(settings)
    if not store.bucket_exists():
        plan.differences.append(Difference("bucket", "missing"))
        plan.differences += [Difference(p, "missing", None, want[p]) for p in PARTS if want[p] is not None]
        return plan
    for part in PARTS:
        have = store.get_bucket_config(part)
        if _canonical(part, have) == _canonical(part, want[part]):
            continue
        if want[part] is None:
            plan.differences.append(Difference(part, "extra", have, None))
        elif part == "lifecycle" and have and _canonical(part, have) == _canonical(part, _without_transitions(want[part])):
            plan.differences.append(Difference(part, "no_transition", have, want[part]))
        else:
            plan.differences.append(Difference(part, "missing" if have in (None, []) else "differs", have, want[part]))
    return plan


def setup(store: BucketAdmin, settings: Settings, *, dry_run: bool = False) -> Plan:
    """Make the bucket as `desired` says; returns what was (or, dry, would be) changed. Running it
    again changes nothing. An `extra` CORS configuration (none wanted) is left alone: another
    application may rely on it; `check` reports it."""
    plan = check(store, settings)
    if dry_run:
        return plan
    want = desired(settings)
    for diff in plan.differences:
        if diff.part == "bucket":
            store.ensure_bucket()
        elif diff.part == "lifecycle":
            _put_lifecycle(store, want["lifecycle"], plan)
        elif diff.problem != "extra":
            store.put_bucket_config(diff.part, want[diff.part])
    return plan


def _put_lifecycle(store: BucketAdmin, rules: list[dict], plan: Plan) -> None:
    """The rules as wanted; where the store refuses transitions, the rules without them and a
    notice (a store that refuses the rest too raises as any refusal does)."""
    try:
        store.put_bucket_config("lifecycle", rules)
    except PermanentStorageError as exc:
        plain = _without_transitions(rules)
        if "NotImplemented" not in str(exc) or plain == rules:
            raise
        store.put_bucket_config("lifecycle", plain)
        plan.notices.append(NO_TRANSITIONS)


def iam_policy(settings: Settings) -> dict:
    """The least privilege of the application's credentials (API, workers, CLI): objects only under
    the prefixes imagepipe writes. Listing is granted on the bucket without a prefix condition
    because HeadBucket (the readiness probe) is authorised as s3:ListBucket and carries no prefix.
    No bucket-level writes: the bucket setup runs once with an operator's credentials."""
    bucket = settings.aws_s3_bucket
    prefixes = [ORIGINALS_PREFIX, PUBLIC_PREFIX, STAGING_PREFIX, REPORTS_PREFIX]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ImagepipeObjects",
                "Effect": "Allow",
                # AbortMultipartUpload: boto3's managed upload of a large original goes multipart
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in prefixes],
            },
            {"Sid": "ImagepipeList", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"]},
        ],
    }


def setup_iam_policy(settings: Settings) -> dict:
    """What `imagepipe bucket setup|check` itself needs (an operator's credentials, used once)."""
    bucket = settings.aws_s3_bucket
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ImagepipeBucketSetup",
                "Effect": "Allow",
                "Action": [
                    "s3:CreateBucket",
                    "s3:ListBucket",
                    "s3:GetBucketPolicy",
                    "s3:PutBucketPolicy",
                    "s3:GetBucketCORS",
                    "s3:PutBucketCORS",
                    "s3:GetLifecycleConfiguration",
                    "s3:PutLifecycleConfiguration",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            }
        ],
    }
