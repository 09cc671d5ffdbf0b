"""`imagepipe migrate ...` and `imagepipe legacy seed`: moving the legacy photos (docs/migration.md)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from services.entities import entity_types

from .context import runtime as _runtime


def _run_id(session, run_id: str | None) -> str:
    from services.legacy import move as migrate

    if run_id:
        return run_id
    run = migrate.latest_run(session)
    if run is None:
        raise click.ClickException("no migration run yet: start one with `imagepipe migrate run --source DIR`")
    return run.id


def _line(p: dict, width: int = 30) -> str:
    finished = p["done"] + p["failed"] + p["skipped"]
    share = finished / p["total"] if p["total"] else 1.0
    bar = "#" * int(share * width) + "-" * (width - int(share * width))
    eta = "—" if p["eta_s"] is None else f"{p['eta_s']} s"
    return (
        f"[{bar}] {finished}/{p['total']}  done {p['done']}  failed {p['failed']}  skipped {p['skipped']}  "
        f"{p['images_per_s']} img/s  ETA {eta}"
    )


@click.group()
def migrate() -> None:
    """Move legacy local-disk photos into the store: run, status, verify, rollback, redirects."""


@migrate.command("run")
@click.option(
    "--source",
    "source",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="the legacy upload folder: LEGACY_URL_PREFIX maps to it",
)
@click.option("--entity", type=click.Choice(entity_types()), default=None, help="only this entity type")
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True, help="images read and queued per page"
)
@click.option("--dry-run", is_flag=True, help="say what would be migrated and which files are missing; change nothing")
@click.option("--retry-failed", is_flag=True, help="also try the files that failed in earlier runs")
@click.option("--no-wait", is_flag=True, help="queue and return; follow with `imagepipe migrate status`")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where the JSON report goes (default: migration-<run id>.json here)",
)
def run(
    source: Path, entity: str | None, batch_size: int, dry_run: bool, retry_failed: bool, no_wait: bool, report_path: Path | None
) -> None:
    """Queue every legacy image (page by page) on the migration queue, then follow the run."""
    from datetime import UTC, datetime

    from db.models import MigrationRun
    from services.legacy import move as svc

    rt = _runtime()
    if not source.is_dir():
        raise click.ClickException(f"--source {source} is not a folder")
    if dry_run:
        with rt.unit_of_work() as session:
            click.echo(json.dumps(svc.plan(session, source, rt.settings, entity, retry_failed), indent=1))
        return
    with rt.unit_of_work() as session:
        run_row = svc.start_run(session, source, entity)
        run_id, skipped = run_row.id, run_row.skipped
        waiting = 0 if retry_failed else svc.previously_failed(session, entity)
    click.echo(
        f"run {run_id}: {skipped} already migrated (skipped)"
        + (f", {waiting} failed before (use --retry-failed to try them again)" if waiting else "")
    )
    last = 0
    while True:
        with rt.unit_of_work() as session:
            page_end = svc.enqueue_page(
                session,
                rt.queue,
                session.get_one(MigrationRun, run_id),
                after_id=last,
                batch_size=batch_size,
                retry_failed=retry_failed,
            )
            if page_end is None:
                break
        last = page_end
        click.echo(f"\rqueued up to image {last}", nl=False)
    with rt.unit_of_work() as session:
        session.get_one(MigrationRun, run_id).enqueued_at = datetime.now(UTC)
    click.echo(f"\rrun {run_id}: queued; workers on the '{rt.settings.migration_queue}' queue move the files")
    if no_wait:
        return
    try:
        _follow(rt, run_id)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped following; the workers go on. `imagepipe migrate status --run {run_id}` resumes "
            "watching, `imagepipe migrate run` again continues what is left"
        )
        return
    _write_report(rt, run_id, report_path)


def _follow(rt, run_id: str) -> None:
    from services.legacy import move as svc

    while True:
        with rt.unit_of_work() as session:
            p = svc.progress(session, run_id)
        click.echo("\r" + _line(p), nl=False)
        if not p["queued"]:
            click.echo()
            return
        time.sleep(1)


def _write_report(rt, run_id: str, report_path: Path | None) -> dict:
    from services.legacy import move as svc

    with rt.unit_of_work() as session:
        report = svc.report(session, run_id)
    path = report_path or Path(f"migration-{run_id}.json")
    path.write_text(json.dumps(report, indent=1))
    click.echo(
        f"migrated {report['done']}, skipped {report['skipped'] + report['already_migrated']}, "
        f"failed {report['failed']}; read {report['bytes_read']} B, wrote {report['bytes_written']} B "
        f"in {report['duration_s']} s"
    )
    for kind, counts in report["per_entity"].items():
        click.echo(f"  {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for code, failed in report["failed_by_code"].items():
        click.echo(
            f"  failed {code}: {failed['count']} ("
            + ", ".join(failed["files"][:5])
            + (", ..." if failed["count"] > 5 else "")
            + ")"
        )
    click.echo(f"report: {path}")
    return report


@migrate.command("status")
@click.option("--run", "run_id", default=None, help="a run id (default: the latest run)")
@click.option("--follow", is_flag=True, help="keep showing progress until the run is done")
def status(run_id: str | None, follow: bool) -> None:
    """Progress of a run, from the database (any terminal, any machine)."""
    from services.legacy import move as svc

    rt = _runtime()
    with rt.unit_of_work() as session:
        run_id = _run_id(session, run_id)
        p = svc.progress(session, run_id)
    if follow:
        _follow(rt, run_id)
    else:
        click.echo(_line(p))
    click.echo(json.dumps(p))


@migrate.command("report")
@click.option("--run", "run_id", default=None, help="a run id (default: the latest run)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def report_command(run_id: str | None, output: Path | None) -> None:
    """Write the JSON report of a run and print its summary."""
    rt = _runtime()
    with rt.unit_of_work() as session:
        run_id = _run_id(session, run_id)
    _write_report(rt, run_id, output)


@migrate.command("verify")
@click.option("--run", "run_id", default=None, help="a run id (default: every image any run migrated)")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where the JSON report goes (default: verify-<run id>.json here)",
)
def verify(run_id: str | None, output: Path | None) -> None:
    """Check every migrated image against the store and the local files; exit 1 when anything is off."""
    from services.legacy import move as svc

    rt = _runtime()
    with rt.unit_of_work() as session:
        result = svc.verify(session, rt.store, rt.settings, run_id)
    path = output or Path(f"verify-{result['run']}.json")
    path.write_text(json.dumps(result, indent=1))
    click.echo(
        f"checked {result['checked']} migrated images: "
        + ("everything agrees" if result["ok"] else f"{len(result['problems'])} problems")
    )
    for problem in result["problems"][:20]:
        click.echo("  " + json.dumps(problem))
    click.echo(f"report: {path}")
    sys.exit(0 if result["ok"] else 1)


@migrate.command("rollback")
@click.option("--run", "run_id", required=True, help="the run to undo")
@click.option("--delete-objects", is_flag=True, help="also delete the run's objects (kept as a backup otherwise)")
def rollback(run_id: str, delete_objects: bool) -> None:
    """Put the run's images back exactly as they were (status legacy, local URL, order, cover)."""
    from services.infra.audit import Actor
    from services.legacy import move as svc

    rt = _runtime()
    with rt.unit_of_work() as session:
        result = svc.rollback(session, rt.store, run_id, delete_objects=delete_objects, actor=Actor.cli())
    click.echo(json.dumps(result))


@migrate.command("redirects")
@click.option("--format", "fmt", type=click.Choice(["csv", "nginx"]), default="csv", show_default=True)
def redirects(fmt: str) -> None:
    """Print the map from every migrated legacy URL to its new URL: CSV, or nginx exact-match
    locations with every path quoted. A URL nginx could not take literally is left out and named
    on stderr (exit 1), never written."""
    from services.legacy.redirects import as_csv, as_nginx
    from services.legacy.redirects import redirects as redirects_of

    rt = _runtime()
    with rt.unit_of_work() as session:
        pairs = list(redirects_of(session, rt.store))
    made = as_csv(pairs) if fmt == "csv" else as_nginx(pairs)
    click.echo(made.text, nl=False)
    for old, why in made.refused:
        click.echo(f"refused: {old!r}: {why}", err=True)
    if made.refused:
        sys.exit(1)


@click.group()
def legacy() -> None:
    """The legacy data set (for rehearsing a migration)."""


@legacy.command("seed")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--count", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
def seed(folder: Path, count: int) -> None:
    """Write legacy files and their rows, with the oddities a real set has."""
    from services.legacy.seed import seed as seed_legacy

    rt = _runtime()
    with rt.unit_of_work() as session:
        made = seed_legacy(session, folder, count, rt.settings.legacy_url_prefix)
    click.echo(json.dumps(made, indent=1))
