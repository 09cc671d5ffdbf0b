"""Delivery: `imagepipe usage ingest` (bandwidth and requests from access logs; docs/operations.md
"Cost and delivery")."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .context import runtime as _runtime


@click.group()
def usage() -> None:
    """Bandwidth and requests per rendition, from S3 server access logs and CloudFront standard logs."""


@usage.command("ingest")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="read the log files in this folder (and below)",
)
@click.option(
    "--from",
    "location",
    default=None,
    metavar="s3://BUCKET/PREFIX",
    help="read the log files under this bucket prefix (default: ACCESS_LOG_PREFIX)",
)
@click.option("--max-files", type=click.IntRange(1), default=None, help="stop after this many new files")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def usage_ingest(folder: Path | None, location: str | None, max_files: int | None, as_json: bool) -> None:
    """Read the access log files not read before (gzip or plain; both formats recognised) and add
    their delivered requests to the egress figures of `imagepipe stats`. Malformed lines are
    counted and skipped. Safe to run again, and alongside Celery beat's own runs."""
    from services.delivery import usage as svc

    rt = _runtime()
    if folder is not None and location is not None:
        raise click.UsageError("give --dir or --from, not both")
    if folder is not None:
        source: svc.LogSource = svc.FolderSource(folder)
    else:
        location = location or rt.settings.access_log_prefix
        if not location:
            raise click.UsageError("give --dir PATH or --from s3://BUCKET/PREFIX (or set ACCESS_LOG_PREFIX)")
        if rt.settings.storage_backend != "s3":
            raise click.UsageError("--from reads a bucket: STORAGE_BACKEND is local (use --dir)")
        source = svc.bucket_source(rt.settings, location)
    report = svc.ingest(rt.unit_of_work, source, max_files=max_files).as_dict()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{report['location']}: {report['files_read']} new file(s) read"
        f" ({', '.join(f'{n} {f}' for f, n in report['formats'].items()) or 'none'}),"
        f" {report['files_already_read']} already read"
    )
    click.echo(
        f"  {report['lines']} line(s): {report['requests_counted']} delivered request(s) for imagepipe's objects,"
        f" {report['bytes']} bytes; {report['malformed_lines']} malformed line(s) skipped"
    )
    for skipped in report["files_skipped"]:
        click.echo(f"  skipped {skipped}")
