"""A command that fails says what failed in one line and exits with its documented code
(cli/failures.py, docs/operations.md "Exit codes"); the traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.seaweed import free_port_block
from services.infra.settings import Settings, project_home
from tests.conftest import ROOT


def _imagepipe(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    imagepipe = Path(sys.executable).parent / "imagepipe"
    return subprocess.run([str(imagepipe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def bare_env(tmp_path):
    """Nothing configured but a private var/ and a store port nobody listens on."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**keep, "IMAGEPIPE_VAR_DIR": str(tmp_path / "var"), "SEAWEEDFS_S3_PORT": str(free_port_block(1))}


def _one_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_store_unreachable_is_one_line_and_exit_3(bare_env, tmp_path):
    done = _imagepipe(["bucket", "check"], bare_env, tmp_path)
    assert done.returncode == 3
    port = bare_env["SEAWEEDFS_S3_PORT"]
    line = _one_line(done)
    assert line.startswith(f"error: store unreachable at http://127.0.0.1:{port}, bucket imagepipe:"), line
    assert "make run" in line  # what to do


def test_database_without_schema_and_unreachable_exit_4(bare_env, tmp_path):
    done = _imagepipe(["sweep"], bare_env, tmp_path)
    assert done.returncode == 4
    assert "imagepipe db upgrade" in _one_line(done)
    closed = free_port_block(1)
    env = {
        **bare_env,
        "DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:{closed}/imagepipe",
        "DB_CONNECT_TIMEOUT_S": "1",
    }
    done = _imagepipe(["migrate", "status"], env, tmp_path)
    assert done.returncode == 4
    assert _one_line(done).startswith(f"error: database unreachable at postgresql+psycopg2://postgres@127.0.0.1:{closed}")


def test_configuration_error_exit_2(bare_env, tmp_path):
    done = _imagepipe(["stats"], {**bare_env, "PORT": "http"}, tmp_path)
    assert done.returncode == 2 and "PORT must be a whole number" in done.stderr
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(bare_env, tmp_path):
    for args, env in ((["--debug", "bucket", "check"], bare_env), (["bucket", "check"], {**bare_env, "IMAGEPIPE_DEBUG": "1"})):
        done = _imagepipe(args, env, tmp_path)
        assert done.returncode == 3
        assert "Traceback (most recent call last)" in done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("error: store unreachable")


def test_project_folder_is_found_from_anywhere_inside_it_or_from_the_checkout(tmp_path):
    assert project_home(ROOT / "docs") == ROOT
    assert project_home(tmp_path) == ROOT  # outside any project: the checkout this code runs from
    other = tmp_path / "elsewhere"
    (other / "sub").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[project]\nname = "imagepipe"\n')
    assert project_home(other / "sub") == other


def test_embedded_store_is_everyones_in_development(tmp_path):
    """The same wiring for `make run`'s processes and every command: the embedded store's
    endpoint and its generated credentials, read from var/; configured values win."""
    env = {"IMAGEPIPE_VAR_DIR": str(tmp_path), "SEAWEEDFS_S3_PORT": "18999"}
    first, second = Settings.from_env(env), Settings.from_env(env)
    assert first.store_embedded and first.aws_s3_endpoint_url == "http://127.0.0.1:18999"
    assert first.aws_access_key_id and first.aws_access_key_id == second.aws_access_key_id
    assert (tmp_path / "secrets" / "s3_credentials.json").stat().st_mode & 0o077 == 0
    assert first.cors_allowed_origins == ("http://127.0.0.1:8000",)  # the page make run serves
    configured = Settings.from_env(
        {**env, "AWS_S3_ENDPOINT_URL": "http://minio:9000", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    )
    assert not configured.store_embedded and configured.aws_access_key_id == "k"
    production = Settings.from_env(
        {
            **env,
            "IMAGEPIPE_ENV": "production",
            "JWT_SECRET": "x" * 40,
            "DATABASE_URL": "postgresql://db/x",
            "CELERY_BROKER_URL": "redis://r:6379/0",
            "AWS_S3_BUCKET": "listing-images",
        },
        role="cli",
    )
    assert not production.store_embedded and production.aws_s3_endpoint_url is None  # AWS, instance role
