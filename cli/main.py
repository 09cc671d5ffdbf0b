"""The `imagepipe` command."""
from __future__ import annotations

import sys

import click

from services.config import ConfigError, Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """imagepipe: listing-photo pipeline (API, worker, tools)."""


@main.command("check-config")
def check_config() -> None:
    """Validate the configuration from the environment and print it (secrets hidden)."""
    s = _settings()
    for name, value in vars(s).items():
        if "secret" in name and isinstance(value, str) and value:  # every *_secret field, present or future
            value = "(set)"
        click.echo(f"{name} = {value}")
    if s.jwt_secret_generated:
        click.echo(f"note: JWT_SECRET not set; development mode uses the generated secret in {s.var_dir / 'secrets'}")
    click.echo("configuration OK")


@main.command()
@click.option("--user", "user_id", type=int, required=True, help="numeric user id (the token's sub)")
@click.option("--admin", is_flag=True, help="add role: admin")
@click.option("--ttl", "ttl_s", type=int, default=24 * 3600, show_default=True, help="lifetime in seconds")
def token(user_id: int, admin: bool, ttl_s: int) -> None:
    """Print a bearer token signed with the configured JWT_SECRET."""
    from services.tokens import issue_token

    s = _settings()
    click.echo(issue_token(s.jwt_secret, user_id, admin=admin, ttl_s=ttl_s))


@main.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    from db.migrate import upgrade

    upgrade(_settings().database_url, revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from db.migrate import downgrade

    downgrade(_settings().database_url, revision)


@main.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
def serve(workers: int) -> None:
    """Run the API with gunicorn on HOST:PORT (127.0.0.1:8000 by default)."""
    import os

    s = _settings()
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{s.host}:{s.port}",
                               "--access-logfile", "-",
                               "--logger-class", "api.gunicorn_log.JsonLogger", "--no-control-socket", "api.wsgi:app"])


@main.command()
@click.option("--concurrency", "-c", default=2, show_default=True, help="worker processes (one per core is best)")
def worker(concurrency: int) -> None:
    """Run a Celery worker on the images queue."""
    import os

    s = _settings()
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", s.task_queue,
                               "-c", str(concurrency), "-E", "--loglevel", "INFO"])


@main.command()
def run() -> None:
    """Start everything for development: object store (if none configured), migrations, API,
    worker and Flower. Ctrl-C stops all of it."""
    from .devrun import run_all

    sys.exit(run_all())


if __name__ == "__main__":
    main()
