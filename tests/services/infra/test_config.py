"""Configuration: one object, every problem reported at once, naming the variable."""

from __future__ import annotations

import subprocess
import sys

import jwt
import pytest

from services.infra.settings import ConfigError, Settings
from tests.conftest import ROOT


def test_production_requires_its_settings_and_names_each(tmp_path):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"IMAGEPIPE_ENV": "production", "IMAGEPIPE_VAR_DIR": str(tmp_path)})
    text = str(err.value)
    for var in ("DATABASE_URL", "CELERY_BROKER_URL", "AWS_S3_BUCKET", "JWT_SECRET"):
        assert var in text
    assert not (tmp_path / "secrets").exists()  # production never invents a secret


_SERVICES = {
    "IMAGEPIPE_ENV": "production",
    "DATABASE_URL": "postgresql+psycopg2://app@db:5432/imagepipe",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "AWS_S3_BUCKET": "listing-images",
}


@pytest.mark.parametrize(
    ("role", "given", "required"),
    [
        # each process requires only what it uses; the variables listed are all it needs
        ("api", {**_SERVICES}, {"JWT_SECRET", "METRICS_TOKEN"}),
        ("worker", {**_SERVICES}, {"CALLBACK_SECRET", "METRICS_TOKEN"}),
        ("worker", {**_SERVICES, "WORKER_METRICS_PORT": "0"}, {"CALLBACK_SECRET"}),  # no port to guard
        ("beat", {"IMAGEPIPE_ENV": "production"}, {"CELERY_BROKER_URL"}),
        ("flower", {"IMAGEPIPE_ENV": "production"}, {"CELERY_BROKER_URL"}),  # + FLOWER_PASSWORD at start
        ("cli", {"IMAGEPIPE_ENV": "production"}, {"DATABASE_URL", "CELERY_BROKER_URL", "AWS_S3_BUCKET"}),
        ("token", {"IMAGEPIPE_ENV": "production"}, {"JWT_SECRET"}),
    ],
)
def test_production_requires_of_each_role_only_what_it_uses(tmp_path, role, given, required):
    every = {"DATABASE_URL", "CELERY_BROKER_URL", "AWS_S3_BUCKET", "JWT_SECRET", "CALLBACK_SECRET", "METRICS_TOKEN"}
    env = {**given, "IMAGEPIPE_VAR_DIR": str(tmp_path)}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env, role=role)
    named = {var for var in every if any(p.startswith(var) for p in err.value.problems)}
    assert named == required, err.value.problems
    # given exactly those, the process starts, holding no secret it was not given
    fill = {var: ("s" * 40 if "SECRET" in var or "TOKEN" in var else _SERVICES.get(var, "x")) for var in required}
    fill["CELERY_BROKER_URL"] = _SERVICES["CELERY_BROKER_URL"]
    fill["DATABASE_URL"] = _SERVICES["DATABASE_URL"]
    s = Settings.from_env({**env, **{k: v for k, v in fill.items() if k in required}}, role=role)
    if "JWT_SECRET" not in required:
        assert s.jwt_secret == "" and not s.jwt_secret_generated
    assert not (tmp_path / "secrets").exists()


def test_a_process_without_the_jwt_secret_accepts_no_token(tmp_path):
    from services.infra.tokens import InvalidToken, decode_token, issue_token

    some = issue_token("k" * 40, 1, admin=True)
    with pytest.raises(InvalidToken, match="no JWT_SECRET"):
        decode_token("", some)
    assert issue_token("k" * 40, 1)  # a configured secret still signs


def test_invalid_values_are_all_reported(tmp_path):
    env = {
        "IMAGEPIPE_VAR_DIR": str(tmp_path),
        "PORT": "eighty",
        "MAX_UPLOAD_BYTES": "-3",
        "STORAGE_BACKEND": "ftp",
        "AWS_S3_ENDPOINT_URL": "localhost:8333",
        "AWS_ACCESS_KEY_ID": "only-half",
        "JWT_SECRET": "short",
        "AWS_S3_BUCKET": "Bad_Bucket",
    }
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    problems = err.value.problems
    for var in ("PORT", "MAX_UPLOAD_BYTES", "STORAGE_BACKEND", "AWS_S3_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY", "JWT_SECRET"):
        assert any(var in p for p in problems), var
    assert len(problems) >= 6


def test_development_generates_a_secret_under_var_and_keeps_it(tmp_path):
    first = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path)})
    assert first.jwt_secret_generated and len(first.jwt_secret) >= 32
    assert (tmp_path / "secrets" / "jwt_secret").stat().st_mode & 0o077 == 0
    assert Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path)}).jwt_secret == first.jwt_secret
    assert first.database_url.startswith("sqlite:///") and first.broker_url == "filesystem://"
    assert first.host == "127.0.0.1"


def _cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_check_config_and_token_commands(tmp_path):
    secret = "s" * 40
    env = {"PATH": "/usr/bin:/bin", "IMAGEPIPE_VAR_DIR": str(tmp_path), "JWT_SECRET": secret}
    ok = _cli("check-config", env=env)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout and secret not in ok.stdout
    assert "JWT_SECRET = (set)" in ok.stdout and "MAX_PIXELS = 120000000" in ok.stdout
    assert "JPEG_PROGRESSIVE = large" in ok.stdout and "# limits" in ok.stdout
    bad = _cli("check-config", env={**env, "PORT": "x", "IMAGEPIPE_ENV": "production"})
    assert bad.returncode == 2 and "PORT" in bad.stderr and "DATABASE_URL" in bad.stderr

    out = _cli("token", "--user", "42", "--admin", env=env)
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), secret, algorithms=["HS256"], audience="imagepipe")
    assert claims["sub"] == "42" and claims["role"] == "admin" and claims["exp"] > claims["iat"]
    plain = jwt.decode(_cli("token", "--user", "7", env=env).stdout.strip(), secret, algorithms=["HS256"], audience="imagepipe")
    assert plain["sub"] == "7" and "role" not in plain


def test_encoder_settings_from_the_environment(tmp_path):
    base = {"IMAGEPIPE_VAR_DIR": str(tmp_path)}
    s = Settings.from_env(base)
    assert (s.jpeg_progressive, s.jpeg_subsample, s.avif_enabled) == (("large",), "auto", False)
    s = Settings.from_env(
        {
            **base,
            "JPEG_PROGRESSIVE": "medium, large",
            "JPEG_SUBSAMPLE": "off",
            "AVIF_ENABLED": "true",
            "AVIF_QUALITY": "45",
            "AVIF_EFFORT": "0",
        }
    )
    assert (s.jpeg_progressive, s.jpeg_subsample, s.avif_enabled, s.avif_quality, s.avif_effort) == (
        ("medium", "large"),
        "off",
        True,
        45,
        0,
    )
    assert Settings.from_env({**base, "JPEG_PROGRESSIVE": "none"}).jpeg_progressive == ()
    assert (s.jpeg_optimize_coding, s.png_compression, s.max_jpeg_scans) == (True, 6, 100)
    s = Settings.from_env({**base, "JPEG_OPTIMIZE_CODING": "false", "PNG_COMPRESSION": "9", "MAX_JPEG_SCANS": "20"})
    assert s.limits.max_jpeg_scans == 20
    assert s.limits.max_decode_bytes == 512 * 2**20
    assert Settings.from_env({**base, "MAX_DECODE_MB": "1024"}).limits.max_decode_bytes == 2**30
    assert (s.jpeg_optimize_coding, s.png_compression) == (False, 9)
    enc = s.encoder
    assert (enc.jpeg_optimize_coding, enc.png_compression) == (False, 9)
    with pytest.raises(ConfigError) as err:
        Settings.from_env(
            {
                **base,
                "JPEG_PROGRESSIVE": "huge",
                "AVIF_ENABLED": "maybe",
                "AVIF_EFFORT": "12",
                "JPEG_OPTIMIZE_CODING": "sometimes",
                "PNG_COMPRESSION": "10",
            }
        )
    text = str(err.value)
    for name in ("JPEG_PROGRESSIVE", "AVIF_ENABLED", "AVIF_EFFORT", "JPEG_OPTIMIZE_CODING", "PNG_COMPRESSION"):
        assert name in text


def test_pipeline_settings_come_from_the_pipeline_declarations(tmp_path):
    """Limits and encoder settings are declared once, on the pipeline's dataclasses: their defaults
    are the settings' defaults and every field of theirs is read from its variable."""
    import dataclasses

    from pipeline.limits import ImageLimits
    from pipeline.specs import EncoderSettings

    s = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path)})
    assert s.limits == ImageLimits() and s.encoder == EncoderSettings()
    for declared, picked in ((ImageLimits, "limits"), (EncoderSettings, "encoder")):
        for f in dataclasses.fields(declared):
            value = {bool: "false" if f.default else "true", int: str(f.metadata.get("hi") or 1)}.get(type(f.default))
            if value is None:
                continue
            changed = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path), f.name.upper(): value})
            assert getattr(getattr(changed, picked), f.name) != f.default, f.name
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path), "MAX_PIXELS": "0", "WEBP_EFFORT": "7"})
    assert err.value.problems == [
        "MAX_PIXELS must be a whole number between 1 and 10000000000, got '0'",
        "WEBP_EFFORT must be a whole number between 0 and 6, got '7'",
    ]


def test_generated_env_example_and_settings_table_are_up_to_date():
    """.env.example and the table in docs/configuration.md are produced from the declarations;
    `imagepipe config generate` rewrites them."""
    from services.infra.declarations import env_name
    from services.infra.settings import declarations
    from services.infra.settings_docs import env_example, render_docs

    example = (ROOT / ".env.example").read_text()
    docs = (ROOT / "docs" / "configuration.md").read_text()
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert example == env_example(), "stale .env.example: run `imagepipe config generate`"
    assert docs == render_docs(docs), "stale docs/configuration.md: run `imagepipe config generate`"
    assert deploy == render_docs(deploy), "stale docs/deploy.md: run `imagepipe config generate`"
    for _, field in declarations():
        assert f"{env_name(field)}=" in example and f"`{env_name(field)}`" in docs


def test_no_variable_is_read_outside_the_declarations():
    """Nothing in the code reads a variable of its own: settings have one home."""
    import re

    readers = re.compile(r"os\.environ\.get\(|os\.environ\[|os\.getenv\(|env\.get\(\"[A-Z]")
    allowed = {"services/infra/settings.py", "services/infra/declarations.py", "tests/", "bench/", "migrations/env.py"}
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv", "var/")) or any(rel.startswith(a) for a in allowed):
            continue
        if readers.search(path.read_text()):
            offenders.append(rel)
    assert offenders == []


IMPORT_ALL = """
import importlib, pkgutil, socket, sys
connects = []
real_connect = socket.socket.connect
def spy(self, address):
    connects.append(address)
    return real_connect(self, address)
socket.socket.connect = spy
sys.path.insert(0, sys.argv[1])
names = ["celeryconfig"]
for package in ("api", "cli", "db", "pipeline", "services", "storage", "workers"):
    names.append(package)
    names += [m.name for m in pkgutil.walk_packages([sys.argv[1] + "/" + package], package + ".")]
for name in names:
    importlib.import_module(name)
print(len(names), "modules", "connections:", connects)
"""


def test_importing_every_module_reads_no_environment_writes_nothing_connects_nowhere(tmp_path):
    """A fresh interpreter imports every module of the project with an environment that would be
    refused if anything read it, in an empty working directory that must stay empty."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    workdir.chmod(0o555)  # read-only for anyone but root; the emptiness check covers root too
    before = sorted(
        p.relative_to(ROOT)
        for p in ROOT.rglob("*")
        if "__pycache__" not in p.parts and not p.is_relative_to(ROOT / ".venv") and ".git" not in p.parts
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "IMAGEPIPE_ENV": "production",
        "PORT": "not-a-port",
        "DATABASE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/none",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "IMAGEPIPE_VAR_DIR": str(workdir / "var"),
    }
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(ROOT)], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("connections: []"), out.stdout
    assert int(out.stdout.split()[0]) > 40
    assert list(workdir.iterdir()) == []
    after = sorted(
        p.relative_to(ROOT)
        for p in ROOT.rglob("*")
        if "__pycache__" not in p.parts and not p.is_relative_to(ROOT / ".venv") and ".git" not in p.parts
    )
    assert after == before


def test_the_api_process_does_not_load_libvips():
    """Sniffing needs 64 bytes, not an image library: building the API app leaves pyvips unloaded."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import api.app, api.uploads, api.images, api.jobs, "
        "api.admin, api.openapi; "
        "print('pyvips' in sys.modules, 'pipeline.render' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_a_task_outlives_a_hung_store_call(tmp_path):
    """A store that hangs ends each call in a transient error (retried) well before the soft time
    limit would kill the task: the settings refuse limits that cannot hold."""
    base = {"IMAGEPIPE_VAR_DIR": str(tmp_path)}
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**base, "TASK_SOFT_TIME_LIMIT_S": "20", "TASK_TIME_LIMIT_S": "30"})
    assert any(p.startswith("TASK_SOFT_TIME_LIMIT_S (20) must exceed") and "28 s" in p for p in err.value.problems)
    ok = Settings.from_env({**base, "TASK_SOFT_TIME_LIMIT_S": "20", "TASK_TIME_LIMIT_S": "30", "STORE_MAX_ATTEMPTS": "2"})
    assert ok.store_max_attempts * (ok.store_connect_timeout_s + ok.store_read_timeout_s) < 20


def test_worker_processes_default_to_the_cpus_the_worker_may_use(tmp_path):
    """WORKER_CONCURRENCY=0 (the default): one process per CPU of the affinity mask, capped by a
    container's CPU quota (cgroup v2 cpu.max, v1 cfs quota); an explicit value wins."""
    import os

    from services.infra.settings import Settings, available_cpus

    mine = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == mine
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one process
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(mine + 8) * 100000} 100000\n")  # a quota above the mask
    assert available_cpus(tmp_path) == mine
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(v1) == 1
    assert Settings.from_env({"WORKER_CONCURRENCY": "3"}).worker_processes == 3
    assert Settings.from_env({}).worker_processes == available_cpus()
