"""Listing media feeds: `imagepipe feed sync` replicates a RESO Web API Media feed (docs/syndication.md)."""

from __future__ import annotations

import json

import click

from services.entities import entity_types

from .context import runtime as _runtime


@click.group()
def feed() -> None:
    """RESO Media feeds replicated into listings (FEED_URLS runs them on Celery beat)."""


@feed.command("sync")
@click.option(
    "--url", required=True, metavar="URL", help="the feed's Media resource, e.g. https://api.example.com/reso/odata/Media"
)
@click.option(
    "--entity",
    type=click.Choice(entity_types()),
    default="properties",
    show_default=True,
    help="the kind of listing its ResourceRecordKey names",
)
@click.option("--system", default=None, help="the originating system its keys belong to (default: the URL's host)")
@click.option("--full/--no-full", default=None, help="compare every key now (default: every FEED_FULL_COMPARE_HOURS)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def feed_sync(url: str, entity: str, system: str | None, full: bool | None, as_json: bool) -> None:
    """Read the feed's records changed since the last run (its watermark), import new and changed
    photos (downloaded by the workers), update fields, delete what the feed deleted. A run that
    stops part-way (a page that times out) exits 1 and the next run resumes from its watermark."""
    from services.syndication import feed as svc

    rt = _runtime()
    report = svc.sync(rt.unit_of_work, rt.store, rt.settings, rt.queue, url, entity_type=entity, system=system, full=full)
    out = report.as_dict()
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(
            f"{out['url']} ({out['system']}): {out['pages']} page(s), {out['records']} record(s): {out['created']} new,"
            f" {out['refetched']} photo(s) changed, {out['updated']} updated, {out['unchanged']} unchanged,"
            f" {out['deleted']} deleted, {out['vanished']} vanished from the feed"
            + (" (full key comparison)" if out["full_compare"] else "")
        )
        for skipped in out["skipped"]:
            click.echo(f"  skipped {skipped['MediaKey'] or '?'}: {skipped['reason']}")
        click.echo(f"  watermark: {out['watermark'] or 'none yet'}")
        if out["error"]:
            click.echo(f"  stopped: {out['error']['code']}: {out['error']['message']} (the next run resumes from the watermark)")
    if not report.complete:
        raise SystemExit(1)
