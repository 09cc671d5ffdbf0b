"""Configuration: one object, every problem reported at once, naming the variable."""
from __future__ import annotations

import subprocess
import sys

import jwt
import pytest

from services.config import ConfigError, Settings
from tests.conftest import ROOT


def test_production_requires_its_settings_and_names_each(tmp_path):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"IMAGEPIPE_ENV": "production", "IMAGEPIPE_VAR_DIR": str(tmp_path)})
    text = str(err.value)
    for var in ("DATABASE_URL", "CELERY_BROKER_URL", "AWS_S3_BUCKET", "JWT_SECRET"):
        assert var in text
    assert not (tmp_path / "secrets").exists()  # production never invents a secret


def test_invalid_values_are_all_reported(tmp_path):
    env = {"IMAGEPIPE_VAR_DIR": str(tmp_path), "PORT": "eighty", "MAX_UPLOAD_BYTES": "-3",
           "STORAGE_BACKEND": "ftp", "AWS_S3_ENDPOINT_URL": "localhost:8333", "AWS_ACCESS_KEY_ID": "only-half",
           "JWT_SECRET": "short", "AWS_S3_BUCKET": "Bad_Bucket"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    problems = err.value.problems
    for var in ("PORT", "MAX_UPLOAD_BYTES", "STORAGE_BACKEND", "AWS_S3_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY",
                "JWT_SECRET"):
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
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_config_and_token_commands(tmp_path):
    secret = "s" * 40
    env = {"PATH": "/usr/bin:/bin", "IMAGEPIPE_VAR_DIR": str(tmp_path), "JWT_SECRET": secret}
    ok = _cli("check-config", env=env)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout and secret not in ok.stdout
    bad = _cli("check-config", env={**env, "PORT": "x", "IMAGEPIPE_ENV": "production"})
    assert bad.returncode == 2 and "PORT" in bad.stderr and "DATABASE_URL" in bad.stderr

    out = _cli("token", "--user", "42", "--admin", env=env)
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "42" and claims["role"] == "admin" and claims["exp"] > claims["iat"]
    plain = jwt.decode(_cli("token", "--user", "7", env=env).stdout.strip(), secret, algorithms=["HS256"])
    assert plain["sub"] == "7" and "role" not in plain


def test_encoder_settings_from_the_environment(tmp_path):
    base = {"IMAGEPIPE_VAR_DIR": str(tmp_path)}
    s = Settings.from_env(base)
    assert (s.jpeg_progressive, s.jpeg_subsample, s.avif_enabled) == (("large",), "auto", False)
    s = Settings.from_env({**base, "JPEG_PROGRESSIVE": "medium, large", "JPEG_SUBSAMPLE": "off",
                           "AVIF_ENABLED": "true", "AVIF_QUALITY": "45", "AVIF_EFFORT": "0"})
    assert (s.jpeg_progressive, s.jpeg_subsample, s.avif_enabled, s.avif_quality, s.avif_effort) == (
        ("medium", "large"), "off", True, 45, 0)
    assert Settings.from_env({**base, "JPEG_PROGRESSIVE": "none"}).jpeg_progressive == ()
    assert (s.jpeg_optimize_coding, s.png_compression, s.max_jpeg_scans) == (True, 6, 100)
    s = Settings.from_env({**base, "JPEG_OPTIMIZE_CODING": "false", "PNG_COMPRESSION": "9", "MAX_JPEG_SCANS": "20"})
    from services.process import limits_from

    assert limits_from(s).max_jpeg_scans == 20
    assert limits_from(s).max_decode_bytes == 512 * 2**20
    assert limits_from(Settings.from_env({**base, "MAX_DECODE_MB": "1024"})).max_decode_bytes == 2**30
    assert (s.jpeg_optimize_coding, s.png_compression) == (False, 9)
    from services.process import encoder_from

    enc = encoder_from(s)
    assert (enc.jpeg_optimize_coding, enc.png_compression) == (False, 9)
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**base, "JPEG_PROGRESSIVE": "huge", "AVIF_ENABLED": "maybe", "AVIF_EFFORT": "12",
                           "JPEG_OPTIMIZE_CODING": "sometimes", "PNG_COMPRESSION": "10"})
    text = str(err.value)
    for name in ("JPEG_PROGRESSIVE", "AVIF_ENABLED", "AVIF_EFFORT", "JPEG_OPTIMIZE_CODING", "PNG_COMPRESSION"):
        assert name in text


def test_every_variable_the_code_reads_is_documented():
    """Keeps .env.example and docs/configuration.md true to services/config.py."""
    import re

    source = (ROOT / "services" / "config.py").read_text()
    names = set(re.findall(r'(?:env\.get|env\[|p\.(?:integer|choice|boolean|names))\("([A-Z0-9_]+)"', source))
    assert len(names) > 30  # the pattern still finds them
    example = (ROOT / ".env.example").read_text()
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert sorted(n for n in names if n not in example) == []
    assert sorted(n for n in names if f"`{n}`" not in docs) == []
