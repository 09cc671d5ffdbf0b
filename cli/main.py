"""The `imagepipe` command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from services.infra.declarations import GROUPS
from services.infra.settings import ROLES
from services.infra.settings_docs import docs_table, env_example, redacted, render_docs

from .context import runtime as _runtime
from .context import settings as _settings
from .delivery import usage
from .failures import Group
from .legacy import legacy, migrate
from .moderation import audit, blocklist, reuse, takedown
from .storage import bucket, orphans, renditions, stats
from .syndication import feed

ROOT = Path(__file__).resolve().parent.parent


@click.group(cls=Group)
@click.option("--debug", is_flag=True, envvar="IMAGEPIPE_DEBUG", help="show the traceback of a failure (also IMAGEPIPE_DEBUG=1)")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """imagepipe: listing-photo pipeline (API, worker, tools).

    Run in the project folder after `make run`, a command uses the same embedded store, database
    and broker; with AWS_*, DATABASE_URL and CELERY_BROKER_URL set it uses those. A failure prints
    one line and exits 1 (found a problem), 2 (usage, configuration), 3 (store), 4 (database),
    5 (broker) or 70 (unexpected)."""
    ctx.meta["imagepipe.debug"] = debug
    if not debug:  # the store's retry warnings: a failure's one line says it all
        logging.getLogger("storage").setLevel(logging.ERROR)


@main.command("check-config")
@click.option(
    "--role",
    type=click.Choice(list(ROLES)),
    default="all",
    show_default=True,
    help="check only what this process needs (a pod's own secrets: docs/deploy.md)",
)
def check_config(role: str) -> None:
    """Validate the configuration from the environment and print it (secrets hidden)."""
    s = _settings(role)
    for group, title in GROUPS.items():
        click.echo(f"# {title}")
        for variable, value, in_group in redacted(s):
            if in_group == group:
                click.echo(f"{variable} = {value}")
    if s.jwt_secret_generated:
        click.echo(f"note: JWT_SECRET not set; development mode uses the generated secret in {s.var_dir / 'secrets'}")
    click.echo("configuration OK")


@main.group()
def config() -> None:
    """What is generated from the settings' declarations (services/infra/settings.py)."""


@config.command("generate")
@click.option("--check", is_flag=True, help="only report whether the files are up to date (exit 1 if not)")
def config_generate(check: bool) -> None:
    """Write .env.example and the settings table of docs/configuration.md."""
    targets = {ROOT / ".env.example": env_example()}
    for doc in ("configuration.md", "deploy.md"):  # both carry the settings table
        targets[ROOT / "docs" / doc] = render_docs((ROOT / "docs" / doc).read_text())
    stale = [path for path, text in targets.items() if path.read_text() != text]
    if check:
        for path in stale:
            click.echo(f"stale: {path.relative_to(ROOT)} (run: imagepipe config generate)")
        sys.exit(1 if stale else 0)
    for path in stale:
        path.write_text(targets[path])
        click.echo(f"wrote {path.relative_to(ROOT)}")


@config.command("table")
def config_table() -> None:
    """Print the settings table (Markdown)."""
    click.echo(docs_table())


@main.command()
@click.option("--user", "user_id", type=int, required=True, help="numeric user id (the token's sub)")
@click.option("--admin", is_flag=True, help="add role: admin")
@click.option(
    "--entity",
    "entities",
    multiple=True,
    metavar="TYPE:ID",
    help="a listing the bearer may write: properties:17, projects:4, properties:* (repeatable)",
)
@click.option("--ttl", "ttl_s", type=int, default=24 * 3600, show_default=True, help="lifetime in seconds")
def token(user_id: int, admin: bool, entities: tuple[str, ...], ttl_s: int) -> None:
    """Print a bearer token signed with the configured JWT_SECRET (what the platform's backend
    mints in production: docs/security.md). Without --entity the bearer writes only their avatar."""
    from services.infra.tokens import check_grant, issue_token

    try:
        grants = [check_grant(e) for e in entities]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--entity") from None
    s = _settings("token")
    if s.jwt_secret_generated:  # on stderr: `T=$(imagepipe token ...)` keeps only the token
        click.echo(f"signed with the development secret {s.var_dir / 'secrets' / 'jwt_secret'}", err=True)
    try:
        click.echo(issue_token(s.jwt_secret, user_id, admin=admin, ttl_s=ttl_s, entities=grants, policy=s.token_policy))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None


@main.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    from db.schema import upgrade

    upgrade(_settings().database_url, revision)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    from db.schema import downgrade

    downgrade(_settings().database_url, revision)


@main.command()
@click.option("--workers", type=int, default=None, help="gunicorn worker processes (default: API_WORKERS)")
def serve(workers: int | None) -> None:
    """Run the API with gunicorn on HOST:PORT (127.0.0.1:8000 by default)."""
    from .commands import api_command

    cmd = api_command(_settings("api"), workers=workers)
    os.execvp(cmd[0], cmd)


@main.command()
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=None,
    help="worker processes (default: WORKER_CONCURRENCY, or one per CPU it may use)",
)
@click.option(
    "--queues",
    "-Q",
    default=None,
    metavar="Q1,Q2",
    help="the queues to take, in priority order (default: CELERY_QUEUE, MIGRATION_QUEUE, MAINTENANCE_QUEUE);"
    " e.g. only MIGRATION_QUEUE for a host of its own during the migration",
)
def worker(concurrency: int | None, queues: str | None) -> None:
    """Run a Celery worker: uploads first, then the migration, then maintenance."""
    from .commands import worker_command

    cmd = worker_command(_settings("worker"), concurrency=concurrency, queue=queues)
    os.execvp(cmd[0], cmd)


@main.command()
def flower() -> None:
    """Run Flower on HOST:FLOWER_PORT behind basic auth (FLOWER_USER / FLOWER_PASSWORD, generated
    under var/secrets in development), its history kept in var/flower.db."""
    from .commands import flower_command

    cmd = flower_command(_settings("flower"))
    os.execvp(cmd[0], cmd)


@main.command()
def beat() -> None:
    """Run Celery beat: the sweeps every SWEEP_INTERVAL_S and the daily dry-run orphan scan. One per
    deployment (a second one makes each sweep run twice, which they survive)."""
    from .commands import beat_command

    cmd = beat_command(_settings("beat"))
    os.execvp(cmd[0], cmd)


@main.command()
def sweep() -> None:
    """Put right what a crash left between two steps (services/storage_admin/sweeps.py); safe at any time."""
    import json

    from services.storage_admin.sweeps import options
    from services.storage_admin.sweeps import sweep as run_sweep

    rt = _runtime()
    with rt.unit_of_work() as session:
        report = run_sweep(session, rt.store, rt.queue, **options(rt.settings))
    click.echo(json.dumps(report.as_dict()))


@main.command()
def run() -> None:
    """Start everything for development: object store (if none configured), migrations, API,
    worker, beat and Flower. Ctrl-C stops all of it."""
    from .devrun import run_all

    sys.exit(run_all())


for _command in (migrate, legacy, bucket, stats, orphans, renditions, reuse, takedown, blocklist, audit, usage, feed):
    main.add_command(_command)

if __name__ == "__main__":
    main()
