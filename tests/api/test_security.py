"""The smaller holes of the security review: secrets that reveal nothing, credentials never
printed, bodies refused before they are read, callbacks that cannot be steered or left pending,
readiness without internals, security headers."""

from __future__ import annotations

import io
import json
import socket
import stat
import subprocess
import sys
import threading

import pytest
import requests

from api.app import create_app
from services.infra.logs import redact_query
from services.infra.settings import Settings, derive_secret, mask_url
from services.jobs.callbacks import Attempt, CallbackRejected, check_callback_url, send
from tests.conftest import REDIS_URL, ROOT, new_entity_id
from tests.support.queues import RecordingQueue


def test_default_secrets_are_derived_one_way_and_reveal_nothing(tmp_path):
    master = "m" * 16 + "A-master-secret-of-40-characters"
    s = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path), "JWT_SECRET": master})
    derived = {s.signing_secret, s.callback_secret}
    assert len(derived) == 2 and master not in derived
    for secret in derived:
        assert master not in secret and master[:16] not in secret  # no prefix scheme, no copy
        assert len(secret) == 64
    assert s.callback_secret == derive_secret(master, "callback-signing")
    # Rotating the master changes every derived secret; setting one explicitly keeps it.
    other = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path), "JWT_SECRET": master[::-1]})
    assert not ({other.signing_secret, other.callback_secret} & derived)
    pinned = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path), "JWT_SECRET": master, "CALLBACK_SECRET": "c" * 40})
    assert pinned.callback_secret == "c" * 40


def test_generated_secret_files_are_private_from_the_start(tmp_path):
    s = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path)})
    folder, file = tmp_path / "secrets", tmp_path / "secrets" / "jwt_secret"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(file.stat().st_mode) == 0o600
    assert file.read_text().strip() == s.jwt_secret
    from cli.seaweed import S3Credentials

    creds = S3Credentials.load_or_create(folder / "s3.json")
    assert stat.S_IMODE((folder / "s3.json").stat().st_mode) == 0o600
    assert S3Credentials.load_or_create(folder / "s3.json") == creds  # kept, not regenerated


def test_passwords_in_urls_are_never_printed(tmp_path):
    db = "postgresql+psycopg2://app:pg-pass-123@db.internal:5432/imagepipe"
    broker = "redis://:redis-pass-456@cache.internal:6379/0"
    env = {
        "PATH": "/usr/bin:/bin",
        "IMAGEPIPE_VAR_DIR": str(tmp_path),
        "JWT_SECRET": "j" * 40,
        "DATABASE_URL": db,
        "CELERY_BROKER_URL": broker,
    }
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "check-config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "pg-pass-123" not in out.stdout and "redis-pass-456" not in out.stdout and "j" * 40 not in out.stdout
    assert "DATABASE_URL = postgresql+psycopg2://app:***@db.internal:5432/imagepipe" in out.stdout
    assert "RATE_LIMIT_REDIS_URL = redis://:***@cache.internal:6379/0" in out.stdout
    settings = Settings.from_env(env)
    assert "pg-pass-123" not in repr(settings) and "j" * 40 not in repr(settings) and "***" in repr(settings)
    assert mask_url("sqlite:///var/imagepipe.db") == "sqlite:///var/imagepipe.db"


def test_signatures_stay_out_of_access_logs():
    assert redact_query("expires=1&signature=abc") == "expires=1&signature=REDACTED"
    assert (
        redact_query("X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&x=1")
        == "X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x=1"
    )
    assert redact_query("Policy=p&Signature=s&Key-Pair-Id=K") == "Policy=REDACTED&Signature=REDACTED&Key-Pair-Id=REDACTED"


def _raw(port: int, head: str) -> bytes:
    """Send only the headers of a request announcing a big body; what comes back before a byte of it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


@pytest.fixture
def served():
    """Serve an app on a loopback port for raw-socket requests."""
    from werkzeug.serving import make_server

    servers = []

    def _serve(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_port

    yield _serve
    for server in servers:
        server.shutdown()


def test_each_route_takes_only_the_body_it_can_use(settings, auth, served, tmp_path):
    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "s")
    port = served(create_app(local, queue=RecordingQueue()))
    # An unsigned 30 MB "upload" to the local store: refused from its headers, not spooled.
    reply = _raw(
        port,
        "POST /media/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 30000000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413") and b"file_too_large" in reply
    # A JSON route takes 64 KiB at most.
    reply = _raw(
        port,
        f"PATCH /api/v1/images/1 HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413") and b"request_too_large" in reply


def test_a_rate_limited_user_is_refused_before_the_body_is_read(settings, make_token, served):
    import uuid

    app = create_app(
        settings.with_overrides(rate_limit_uploads_per_minute=1, rate_limit_redis_url=REDIS_URL), queue=RecordingQueue()
    )
    app.extensions["imagepipe"].limiter.prefix = f"test-{uuid.uuid4().hex}"
    port = served(app)
    user = 600 + new_entity_id() % 1000
    token = make_token(user, entities=("properties:*",))
    client = app.test_client()
    ok = client.post(
        f"/api/v1/properties/{new_entity_id()}/images",
        headers={"Authorization": f"Bearer {token}"},
        data={"file": (io.BytesIO(b"\xff\xd8\xff" + bytes(2000)), "a.jpg")},
    )
    assert ok.status_code in (202, 422), ok.get_json()
    reply = _raw(
        port,
        f"POST /api/v1/properties/{new_entity_id()}/images HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 1000000000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 429") and b"Retry-After" in reply


def test_callback_urls_are_checked_by_host_and_port(settings):
    hooks = settings.with_overrides(callback_allowed_hosts=("hooks.example.com", "crm.example.com:8443", "127.0.0.1:*"))
    for ok in (
        "https://hooks.example.com/x",
        "http://hooks.example.com:80/x",
        "https://hooks.example.com:443/",
        "https://crm.example.com:8443/cb",
        "http://127.0.0.1:51234/cb",
    ):
        assert check_callback_url(ok, hooks) == ok
    for bad in (
        "http://hooks.example.com:8080/x",
        "http://hooks.example.com:80:evil.com/",
        "https://crm.example.com/cb",
        "http://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
        "http://evil.com/",
        "http://hooks.example.com:99999/",
    ):
        with pytest.raises(CallbackRejected):
            check_callback_url(bad, hooks)
    with pytest.raises(Exception) as err:
        Settings.from_env({"IMAGEPIPE_VAR_DIR": "/tmp", "JWT_SECRET": "j" * 40, "CALLBACK_ALLOWED_HOSTS": "a.com:x"})
    assert "CALLBACK_ALLOWED_HOSTS" in str(err.value)


def test_a_url_the_http_client_refuses_is_a_failed_attempt_not_a_crash(settings):
    """Whatever the HTTP client raises, the delivery reports it (and the task retries, then fails the
    callback), so no callback stays pending for ever."""
    for url in ("http://hooks.example.com:80:evil.com/", "http://[::1/", "http://127.0.0.1:1/closed"):
        problem = send(Attempt("job", url, b"{}"), settings)
        assert isinstance(problem, str) and problem


def test_readiness_says_up_or_down_and_keeps_the_details_for_the_log(settings, caplog):
    broken = settings.with_overrides(broker_url="redis://127.0.0.1:9/0", aws_s3_endpoint_url="http://127.0.0.1:9")
    with caplog.at_level("WARNING", logger="imagepipe.api"):
        body = create_app(broken).test_client().get("/readyz").get_json()
    assert body["checks"] == {"database": "ok", "broker": "down", "store": "down"}
    assert "127.0.0.1" not in json.dumps(body) and "Error" not in json.dumps(body)
    assert any("127.0.0.1:9" in r.getMessage() for r in caplog.records)


def test_security_headers_on_pages_api_and_media(settings, tmp_path):
    client = create_app(settings, queue=RecordingQueue()).test_client()
    api = client.get("/healthz")
    assert api.headers["X-Content-Type-Options"] == "nosniff" and api.headers["X-Frame-Options"] == "DENY"
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert settings.aws_s3_endpoint_url in csp  # renditions (and direct uploads) come from the store
    for name in ("index.html", "apidocs.html"):
        assert "<script>" not in (ROOT / "web" / name).read_text()  # no inline script for the CSP to block
    local = create_app(settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "s"), queue=RecordingQueue())
    local.extensions["imagepipe"].store.put("public/x/1/a.webp", b"<script>alert(1)</script>", content_type="text/html")
    media = local.test_client().get("/media/public/x/1/a.webp")
    assert media.status_code == 200 and media.headers["Content-Security-Policy"] == "sandbox"
    assert media.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unsigned_local_upload_is_refused_before_its_file_is_read(settings, served, tmp_path):
    """The local store reads the policy fields first and answers before the file's bytes arrive."""
    local = settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "s")
    port = served(create_app(local, queue=RecordingQueue()))
    head = (
        '--b\r\nContent-Disposition: form-data; name="key"\r\n\r\nstaging/x\r\n'
        '--b\r\nContent-Disposition: form-data; name="policy"\r\n\r\ne30=\r\n'
        '--b\r\nContent-Disposition: form-data; name="signature"\r\n\r\n00\r\n'
        '--b\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    first = "\xff" * 65536  # the first 64 KiB of a file announced as 20 MB; the rest never comes
    reply = _raw(
        port,
        "POST /media/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(head) + 20_000_000}\r\n\r\n{head}{first}",
    )
    assert reply.startswith(b"HTTP/1.1 403") and b"upload_refused" in reply


def test_a_nul_character_in_any_path_id_or_body_string_is_a_clear_4xx(live_server, auth):
    """PostgreSQL refuses NUL in a string (issue 22, L1): every string path parameter of the
    contract, the legacy URLs, and JSON body strings answer 404/400, never 500."""
    from api.openapi import spec

    document = spec()
    tried = 0
    for path, item in document["paths"].items():
        params = [p for p in item.get("parameters", []) if p["in"] == "path"]
        if not any(p["schema"].get("type") == "string" for p in params):
            continue
        url = path
        for p in params:
            value = "a%00b" if p["schema"].get("type") == "string" else "1"
            url = url.replace("{" + p["name"] + "}", value)
        for method in [m for m in item if m in ("get", "post", "patch", "delete")]:
            for headers in (auth, {}):
                r = requests.request(method, live_server + url, headers=headers, timeout=10)
                assert r.status_code in (401, 404), (method, url, r.status_code, r.text[:200])
                tried += 1
    assert tried >= 8
    for url in ("/uploads/a%00b.jpg", "/api/v1/jobs/abc%00", "/api/v1/uploads/x%00y/complete"):
        r = (
            requests.post(live_server + url, headers=auth, timeout=10)
            if url.endswith("complete")
            else requests.get(live_server + url, headers=auth, timeout=10)
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (url, r.text)
    r = requests.post(
        f"{live_server}/api/v1/uploads",
        headers=auth,
        timeout=10,
        json={"entity": "properties", "entity_id": 5, "content_type": "image/jpeg", "size": 10, "filename": "a\u0000b.jpg"},
    )
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"]
