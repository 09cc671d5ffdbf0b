"""Shared fixtures: real PostgreSQL, Redis, SeaweedFS and a real Celery worker.

Importing the project reads no environment, so the suite never changes os.environ: its settings
come from `settings_env`, a mapping (the environment a worker or API started as a separate
process gets too), with a private queue and a throwaway var/ directory.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
RUN_ID = uuid.uuid4().hex[:10]
_VAR = Path(tempfile.mkdtemp(prefix=f"imagepipe-test-{RUN_ID}-"))

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URLS = [
    u
    for u in [
        os.environ.get("TEST_PG_ADMIN_URL"),
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
        "postgresql+psycopg2://root@127.0.0.1:5432/postgres",
        "postgresql+psycopg2://root@127.0.0.1:5432/test",
    ]
    if u
]
TEST_DB_NAME = f"imagepipe_test_{RUN_ID}"
AGENT = ("properties:*", "projects:*", "avatars:*")  # the grants of the suite's usual user

# Variables of the machine's environment a test run must not pick up.
_FOREIGN = (
    "DATABASE_URL",
    "REDIS_URL",
    "AWS_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_CLOUDFRONT_URL",
    "AWS_REGION",
    "CELERY_BROKER_URL",
    "CELERY_QUEUE",
    "JWT_SECRET",
)


def corpus(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"corpus file missing: {path} (the corpus lives in tests/corpus)")
    return path


def new_entity_id() -> int:
    return secrets.randbelow(10**12) + 1


# -- PostgreSQL ------------------------------------------------------------------------------
def _admin_engine():
    from sqlalchemy import create_engine, text

    errors = []
    for url in PG_ADMIN_URLS:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return engine, url
        except Exception as exc:  # try the next role
            errors.append(f"{url}: {exc.__class__.__name__}")
            engine.dispose()
    pytest.exit("PostgreSQL is not reachable on 127.0.0.1:5432: " + "; ".join(errors), returncode=3)


class PgDatabases:
    """Creates throwaway databases and drops them at the end of the session."""

    def __init__(self):
        self.engine, admin_url = _admin_engine()
        self.base_url = admin_url.rsplit("/", 1)[0]
        self.created: list[str] = []

    def create(self, name: str) -> str:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return f"{self.base_url}/{name}"

    def drop_all(self) -> None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


@pytest.fixture(scope="session")
def pg() -> PgDatabases:
    dbs = PgDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def database_url(pg) -> str:
    """The suite's database, schema built by `alembic upgrade head`."""
    from db.schema import upgrade

    url = pg.create(TEST_DB_NAME)
    upgrade(url)
    return url


def private_database(pg, label: str) -> str:
    """A database of its own (schema from `alembic upgrade head`), for tests that count or sweep
    every row and must not see the rest of the suite's."""
    from db.schema import upgrade

    url = pg.create(f"{TEST_DB_NAME}_{label}")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    from db.session import make_engine

    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine):
    from db.session import make_session_factory

    s = make_session_factory(engine)()
    yield s
    s.close()


# -- S3 (SeaweedFS) -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def seaweed():
    from cli.seaweed import S3Credentials, SeaweedServer

    creds = S3Credentials("test" + secrets.token_hex(6), secrets.token_urlsafe(24))
    server = SeaweedServer(_VAR / "seaweed", bucket="imagepipe-test", credentials=creds).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings_env(database_url, seaweed) -> dict[str, str]:
    """The suite's environment: what `settings` is read from, and what a worker or API started
    as a separate process gets."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env.update(
        IMAGEPIPE_ENV="development",
        IMAGEPIPE_VAR_DIR=str(_VAR),
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_QUEUE=f"images-test-{RUN_ID}",
        MIGRATION_QUEUE=f"migration-test-{RUN_ID}",
        MAINTENANCE_QUEUE=f"maintenance-test-{RUN_ID}",
        JWT_SECRET=secrets.token_urlsafe(48),
        STORAGE_BACKEND="s3",
        DATABASE_URL=database_url,
        AWS_S3_ENDPOINT_URL=seaweed.endpoint_url,
        AWS_ACCESS_KEY_ID=seaweed.credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY=seaweed.credentials.secret_access_key,
        AWS_S3_BUCKET=seaweed.bucket,
        CALLBACK_ALLOWED_HOSTS="127.0.0.1:*",  # the tests' own callback receivers, on any port
        # The test photo and feed servers (tests/support/photoserver.py) listen on 127.0.0.2 only; every
        # other special-purpose address stays refused (tests/syndication/test_fetch.py).
        FETCH_ALLOWED_NETWORKS="127.0.0.2/32",
        RATE_LIMIT_UPLOADS_PER_MINUTE="0",  # off for the suite; tests/api/test_limits.py turns it on
        WORKER_METRICS_PORT="0",  # workers started by a test serve their metrics only where it asks
    )
    return env


@pytest.fixture(scope="session")
def settings(settings_env):
    from services.infra.settings import Settings

    return Settings.from_env(settings_env)


@pytest.fixture(scope="session")
def store(settings):
    from services.infra.stores import make_store

    s3 = make_store(settings)
    s3.ensure_bucket()
    s3.allow_anonymous_read("public/")
    return s3


# -- Celery worker on the real Redis broker -------------------------------------------------
@pytest.fixture(scope="session")
def celery_worker(settings, store):
    from celery.contrib.testing.worker import start_worker

    from workers.app import create_worker_app

    app = create_worker_app(settings)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[settings.task_queue, settings.migration_queue, settings.maintenance_queue],
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker
    # drop whatever this run left in its private queue
    import redis

    redis.Redis.from_url(REDIS_URL).delete(settings.task_queue, settings.migration_queue, settings.maintenance_queue)


# -- The API over real HTTP -----------------------------------------------------------------
@pytest.fixture(scope="session")
def contract():
    """Every JSON response of the apps it is attached to is validated against the OpenAPI
    document; a violation fails the run at teardown, naming the route and the field."""
    from api.openapi import spec
    from tests.support.contract import ContractCheck

    check = ContractCheck(spec)
    yield check
    assert not check.violations, "responses that break the OpenAPI contract:\n" + "\n".join(check.violations)


@pytest.fixture(scope="session")
def app(settings, store, contract):
    from api.app import create_app

    return contract.attach(create_app(settings))


@pytest.fixture(scope="session")
def live_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def make_token(settings):
    from services.infra.tokens import issue_token

    def _make(user_id: int = 42, admin: bool = False, ttl_s: int = 3600, entities: tuple[str, ...] = ()) -> str:
        return issue_token(settings.jwt_secret, user_id, admin=admin, ttl_s=ttl_s, entities=entities,
                           policy=settings.token_policy)  # fmt: skip

    return _make


@pytest.fixture
def auth(make_token):
    """User 42 as an agent of every property and project (the platform grants listings in the token)."""
    return {"Authorization": f"Bearer {make_token(42, entities=AGENT)}"}
