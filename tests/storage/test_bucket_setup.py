"""`imagepipe bucket setup|check|policy` against a fresh bucket on SeaweedFS, which enforces the
bucket policy (anonymous reads) and CORS preflights; the commands run as an operator runs them."""

from __future__ import annotations

import ast
import json
import secrets
import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT

ORIGIN = "https://www.listings.example"


@pytest.fixture
def fresh(settings_env, seaweed):
    bucket = f"setup-{secrets.token_hex(4)}"
    env = {**settings_env, "AWS_S3_BUCKET": bucket, "CORS_ALLOWED_ORIGINS": ORIGIN}

    def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env or base, capture_output=True, text=True, timeout=120
        )

    from services.infra.settings import Settings
    from services.infra.stores import make_store

    base = env
    return {
        "cli": cli,
        "env": env,
        "bucket": bucket,
        "store": make_store(Settings.from_env(env)),
        "endpoint": seaweed.endpoint_url,
    }


def test_setup_creates_and_configures_a_fresh_bucket_once(fresh):
    cli, store = fresh["cli"], fresh["store"]
    check = cli("bucket", "check")
    assert check.returncode == 1 and "bucket: does not exist" in check.stdout

    dry = cli("bucket", "setup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would change: bucket: does not exist" in dry.stdout and "would change: lifecycle: not set" in dry.stdout
    assert not store.admin().bucket_exists()  # a dry run changes nothing

    first = cli("bucket", "setup")
    assert first.returncode == 0, first.stderr
    assert {"changed: policy: not set", "changed: cors: not set", "changed: lifecycle: not set"} <= set(first.stdout.splitlines())
    # SeaweedFS has no storage classes: the originals' archive transition is refused, said, skipped
    notice = "notice: lifecycle: this store refuses storage-class transitions (NotImplemented"
    assert notice in first.stdout, first.stdout
    second = cli("bucket", "setup")
    assert second.returncode == 0 and "up to date, nothing changed" in second.stdout, second.stdout
    assert notice in second.stdout  # tried again, refused again: never silently
    check = cli("bucket", "check")
    assert check.returncode == 0, check.stdout  # a notice, not drift
    assert "notice: lifecycle: originals/ are not archived" in check.stdout

    rules = {r["ID"]: r for r in store.admin().get_bucket_config("lifecycle")}
    assert set(rules) == {"imagepipe-expire-staging", "imagepipe-abort-multipart"}
    assert rules["imagepipe-expire-staging"]["Filter"]["Prefix"] == "staging/"
    assert rules["imagepipe-expire-staging"]["Expiration"]["Days"] == 2
    assert rules["imagepipe-abort-multipart"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7

    # with archiving off there is nothing to refuse: no notice at all
    off = {**fresh["env"], "ORIGINALS_ARCHIVE_DAYS": "0"}
    quiet = fresh["cli"]("bucket", "check", env=off)
    assert quiet.returncode == 0 and "notice" not in quiet.stdout, quiet.stdout


def test_setup_writes_the_archive_transition_where_the_store_takes_it_and_check_sees_it_go(fresh, moto_server):
    """moto takes lifecycle transitions as S3 does: the rules' shape, read back, and drift found."""
    env = {**fresh["env"], "AWS_S3_ENDPOINT_URL": moto_server, "ORIGINALS_ARCHIVE_DAYS": "120"}
    cli = fresh["cli"]
    first = cli("bucket", "setup", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed: lifecycle: not set" in first.stdout and "notice" not in first.stdout
    assert cli("bucket", "check", env=env).returncode == 0

    from services.infra.settings import Settings
    from services.infra.stores import make_store

    admin = make_store(Settings.from_env(env)).admin()
    rules = {r["ID"]: r for r in admin.get_bucket_config("lifecycle")}
    archive = rules["imagepipe-archive-originals"]
    assert archive["Filter"]["Prefix"] == "originals/" and archive["Status"] == "Enabled"
    assert archive["Transitions"] == [{"Days": 120, "StorageClass": "GLACIER_IR"}]
    assert "Expiration" not in archive  # originals are archived, never expired

    # someone shortens the archive delay by hand: drift, and setup puts it back
    admin.put_bucket_config(
        "lifecycle",
        [r for r in rules.values() if r["ID"] != "imagepipe-archive-originals"]
        + [{**archive, "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}]}],
    )
    drift = cli("bucket", "check", env=env)
    assert drift.returncode == 1 and "lifecycle: differs" in drift.stdout, drift.stdout
    assert "changed: lifecycle: differs" in cli("bucket", "setup", env=env).stdout
    assert cli("bucket", "check", env=env).returncode == 0


def test_only_public_is_anonymously_readable_and_cors_admits_the_configured_origin(fresh):
    cli, store, base = fresh["cli"], fresh["store"], f"{fresh['endpoint']}/{fresh['bucket']}"
    assert cli("bucket", "setup").returncode == 0
    for key in (
        "public/properties/1/2/thumbnail_w300_q82.jpg",
        "originals/properties/1/2.jpg",
        "staging/abc",
        "reports/orphan-scans/x.jsonl",
    ):
        store.put(key, b"bytes of " + key.encode(), content_type="image/jpeg")
    assert requests.get(f"{base}/public/properties/1/2/thumbnail_w300_q82.jpg", timeout=10).status_code == 200
    for private in ("originals/properties/1/2.jpg", "staging/abc", "reports/orphan-scans/x.jsonl"):
        assert requests.get(f"{base}/{private}", timeout=10).status_code == 403, private

    def preflight(origin: str) -> requests.Response:
        return requests.options(
            f"{base}/staging/upload", timeout=10, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200 and allowed.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "POST" in allowed.headers.get("Access-Control-Allow-Methods", "")
    refused = preflight("https://evil.example")
    assert refused.headers.get("Access-Control-Allow-Origin") not in ("https://evil.example", "*")


def test_check_reports_drift_and_setup_puts_it_right(fresh):
    cli, store = fresh["cli"], fresh["store"]
    assert cli("bucket", "setup").returncode == 0
    store.admin().put_bucket_config("cors", [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PUT", "DELETE"]}])
    store.admin().put_bucket_config(
        "policy",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{fresh['bucket']}/*"],
                }
            ],
        },
    )
    check = cli("bucket", "check")
    assert check.returncode == 1
    assert "cors: differs" in check.stdout and "policy: differs" in check.stdout
    assert "lifecycle: differs" not in check.stdout and "lifecycle: not set" not in check.stdout
    fixed = cli("bucket", "setup")
    assert "changed: cors: differs" in fixed.stdout and "changed: policy: differs" in fixed.stdout
    assert cli("bucket", "check").returncode == 0
    assert requests.get(f"{fresh['endpoint']}/{fresh['bucket']}/originals/x.jpg", timeout=10).status_code in (403, 404)


# The boto3 calls each application path makes, and the IAM action that authorises each.
_IAM_ACTION = {
    "put_object": {"s3:PutObject"},
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    "copy": {"s3:GetObject", "s3:PutObject"},
    # boto3's managed upload goes multipart for large bodies and aborts the upload when a part fails
    "upload_fileobj": {"s3:PutObject", "s3:AbortMultipartUpload"},
    "delete_object": {"s3:DeleteObject"},
    "delete_objects": {"s3:DeleteObject"},
    "list_objects_v2": {"s3:ListBucket"},
    "head_bucket": {"s3:ListBucket"},
    "generate_presigned_url": {"s3:GetObject"},
    "generate_presigned_post": {"s3:PutObject"},
}
_PROVISIONING = {
    "create_bucket",
    "put_bucket_policy",
    "get_bucket_policy",
    "put_bucket_cors",
    "get_bucket_cors",
    "put_bucket_lifecycle_configuration",
    "get_bucket_lifecycle_configuration",
}


def test_the_printed_iam_policy_covers_every_call_the_application_makes_and_no_more(fresh):
    out = fresh["cli"]("bucket", "policy", "--print-iam")
    assert out.returncode == 0, out.stderr
    policy = json.loads(out.stdout)
    granted = {a for st in policy["Statement"] for a in st["Action"]}
    resources = [r for st in policy["Statement"] for r in st["Resource"]]

    tree = ast.parse((ROOT / "storage" / "s3.py").read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "client"
    }
    unknown = calls - set(_IAM_ACTION) - _PROVISIONING
    assert not unknown, f"storage/s3.py calls {unknown}: add them to the IAM policy and to this map"
    needed = set().union(*(_IAM_ACTION[c] for c in calls - _PROVISIONING))
    assert granted == needed  # exactly what is used: nothing bucket-level, no wildcard action
    bucket = fresh["bucket"]
    assert sorted(resources) == sorted(
        [f"arn:aws:s3:::{bucket}"] + [f"arn:aws:s3:::{bucket}/{p}*" for p in ("originals/", "public/", "staging/", "reports/")]
    )

    setup_policy = json.loads(fresh["cli"]("bucket", "policy", "--print-iam", "--setup").stdout)
    assert {"s3:PutBucketPolicy", "s3:PutBucketCORS", "s3:PutLifecycleConfiguration"} <= set(
        setup_policy["Statement"][0]["Action"]
    )


def test_bucket_commands_explain_that_the_local_backend_has_no_bucket(settings_env, tmp_path):
    env = {**settings_env, "STORAGE_BACKEND": "local", "LOCAL_STORAGE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "bucket", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "has no bucket to set up" in out.stderr


def test_bucket_check_reports_a_refusal_as_it_is_not_as_a_missing_bucket(fresh, settings_env):
    """Wrong credentials are not 'bucket: does not exist' (issue 27): the store's own error, exit 3."""
    env = {**settings_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "bucket", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "does not exist" not in out.stdout
    assert out.stderr.startswith("error: store refused the request at ") and "403" in out.stderr
