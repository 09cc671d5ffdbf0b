"""Storage administration: `imagepipe bucket setup|check|policy`, `imagepipe stats`,
`imagepipe orphans`, `imagepipe renditions stale|regenerate` (docs/operations.md)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from services.entities import entity_types
from services.infra.audit import Action, Actor, record

from .context import runtime as _runtime
from .context import settings as _settings


def _bucket_admin(settings):
    from services.infra.stores import NoBucket, make_bucket_admin

    try:
        return make_bucket_admin(settings)
    except NoBucket as exc:
        raise click.ClickException(str(exc)) from None


def _entity(value: str | None, *, id_required: bool = False) -> tuple[str, int | None] | None:
    if not value:
        return None
    entity_type, _, raw_id = value.partition(":")
    if entity_type not in entity_types():
        raise click.BadParameter(f"entity type must be one of {', '.join(entity_types())}", param_hint="--entity")
    if not raw_id:
        if id_required:
            raise click.BadParameter("give TYPE:ID, e.g. properties:17", param_hint="--entity")
        return entity_type, None
    try:
        return entity_type, int(raw_id)
    except ValueError:
        raise click.BadParameter(f"the id must be a number, got {raw_id!r}", param_hint="--entity") from None


# -- bucket --------------------------------------------------------------------------------------
@click.group()
def bucket() -> None:
    """The bucket's policy, CORS and lifecycle rules (services/storage_admin/bucket.py)."""


@bucket.command("setup")
@click.option("--dry-run", is_flag=True, help="print what would change; change nothing")
def bucket_setup(dry_run: bool) -> None:
    """Create the bucket if missing and apply the policy (only public/ anonymously readable), CORS
    for CORS_ALLOWED_ORIGINS and the lifecycle rules (staging/ expires after two days, incomplete
    multipart uploads aborted after seven, originals/ to Glacier Instant Retrieval after
    ORIGINALS_ARCHIVE_DAYS; a store that refuses transitions gets the rest and a notice).
    Idempotent."""
    from services.storage_admin.bucket import setup

    settings = _settings()
    plan = setup(_bucket_admin(settings), settings, dry_run=dry_run)
    verb = "would change" if dry_run else "changed"
    for diff in plan.differences:
        if diff.problem == "extra":
            click.echo(f"left alone: {diff.describe()}")
        elif not diff.notice:
            click.echo(f"{verb}: {diff.describe()}")
        elif dry_run:
            click.echo(f"would try: {diff.describe()}")
    for notice in plan.notices:
        click.echo(f"notice: lifecycle: {notice}")
    if plan.clean:
        click.echo(f"bucket {plan.bucket}: up to date, nothing changed")


@bucket.command("check")
def bucket_check() -> None:
    """Report what is missing or different on the bucket (exit 1 if anything is)."""
    from services.storage_admin.bucket import check

    settings = _settings()
    plan = check(_bucket_admin(settings), settings)
    for diff in plan.differences:
        click.echo(("notice: " if diff.notice else "") + diff.describe())
    if plan.clean:
        click.echo(f"bucket {plan.bucket}: policy, CORS and lifecycle as imagepipe needs them")
        return
    click.echo("run `imagepipe bucket setup` to apply (with --dry-run first to see it)")
    sys.exit(1)


@bucket.command("policy")
@click.option("--print-iam", is_flag=True, required=True, help="print the IAM policy of the application's credentials")
@click.option("--setup", "for_setup", is_flag=True, help="print instead what `bucket setup|check` needs (an operator's)")
def bucket_policy(print_iam: bool, for_setup: bool) -> None:
    """Print the least-privilege IAM policy (JSON) for AWS_S3_BUCKET."""
    from services.storage_admin.bucket import iam_policy, setup_iam_policy

    settings = _settings()
    click.echo(json.dumps(setup_iam_policy(settings) if for_setup else iam_policy(settings), indent=2))


# -- stats ---------------------------------------------------------------------------------------
def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.command()
@click.option(
    "--source",
    type=click.Choice(["database", "bucket"]),
    default="database",
    show_default=True,
    help="bucket: recompute from a listing of the bucket and show how it differs from the database",
)
@click.option("--json", "as_json", is_flag=True, help="print the JSON the API answers")
@click.option("--days", type=click.IntRange(1, 400), default=30, show_default=True, help="the egress window in days")
@click.option(
    "--recount",
    is_flag=True,
    help="also aggregate the images and renditions tables themselves (a full scan)"
    " and say whether the usage rollup agrees (exit 1 if not)",
)
def stats(source: str, as_json: bool, days: int, recount: bool) -> None:
    """Bytes and objects per entity type and rendition, images per status, bytes added per day;
    egress per day and rendition from the ingested access logs; a monthly cost estimate."""
    from services.delivery.report import add_delivery
    from services.storage_admin import stats as svc

    rt = _runtime()
    with rt.unit_of_work() as session:
        db = svc.database_stats(session)
        full = svc.recount(session) if recount else None
    if full is not None:
        keys = ("totals", "entities", "renditions", "images_by_status", "added_per_day")
        agree = all(full[k] == db[k] for k in keys)
        click.echo(
            f"recount: {full['duration_ms']} ms over the tables; the rollup "
            + ("agrees" if agree else "DIFFERS: " + ", ".join(k for k in keys if full[k] != db[k])),
            err=True,
        )
        if not agree:
            sys.exit(1)
    out = svc.bucket_report(rt.store, db) if source == "bucket" else db
    with rt.unit_of_work() as session:
        add_delivery(session, rt.settings, out, days=days)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"source: {out['source']} ({out['duration_ms']} ms)")
    click.echo(f"total: {out['totals']['objects']} objects, {_size(out['totals']['bytes'])}")
    for name, e in out["entities"].items():
        click.echo(
            f"  {name:<11} originals {e['originals']['objects']:>8} {_size(e['originals']['bytes']):>11}"
            f"   renditions {e['renditions']['objects']:>8} {_size(e['renditions']['bytes']):>11}"
        )
    for name, formats in out["renditions"].items():
        click.echo(f"  {name:<11} " + "  ".join(f"{f} {c['objects']} ({_size(c['bytes'])})" for f, c in formats.items()))
    click.echo("images: " + ", ".join(f"{k} {v}" for k, v in out["images_by_status"].items()))
    recent = [d for d in out["added_per_day"] if d["objects"]][-7:]
    if recent:
        click.echo("added (last days with uploads): " + ", ".join(f"{d['date']} {_size(d['bytes'])}" for d in recent))
    scan = out["last_orphan_scan"]
    click.echo(
        "last orphan scan: "
        + (
            "none yet"
            if scan is None
            else f"{scan['finished_at']}: {scan['orphans']['objects']} orphans "
            f"({_size(scan['orphans']['bytes'])}), missing {scan['missing']}"
        )
    )
    _egress(out["egress"])
    _cost(out["cost"])
    if source == "bucket":
        click.echo("difference (bucket - database): " + json.dumps(out["difference"]["entities"]))


def _egress(e: dict) -> None:
    if not e["known"]:
        click.echo(f"egress: unknown — {e['why']}")
        return
    t = e["totals"]
    click.echo(f"egress, last {e['days']} days: {t['requests']} requests, {_size(t['bytes'])}")
    for name, src in e["sources"].items():
        ratio = src.get("cache_hit_ratio")
        hit = f", cache hit ratio {ratio:.1%}" if ratio is not None else ""
        click.echo(f"  {name:<11} {src['requests']:>8} requests {_size(src['bytes']):>11}{hit}")
    for name, formats in e["renditions"].items():
        click.echo(f"  {name:<11} " + "  ".join(f"{f} {c['requests']} req ({_size(c['bytes'])})" for f, c in formats.items()))
    served = [d for d in e["per_day"] if d["requests"]][-7:]
    if served:
        click.echo("served (last days with requests): " + ", ".join(f"{d['date']} {_size(d['bytes'])}" for d in served))
    never = ", ".join(f"{n['rendition']}/{n['format']} ({_size(n['bytes'])} stored)" for n in e["never_served"])
    click.echo(f"never served in {e['days']} days: {never or 'none'}")
    logs = e["logs"]
    click.echo(
        f"logs: {logs['files']} file(s), {logs['lines']} line(s), {logs['malformed_lines']} malformed,"
        f" last read {logs['last_ingested_at']}"
    )


def _cost(c: dict) -> None:
    m = c["monthly"]
    click.echo(
        f"cost estimate ({c['currency']}/month, prices of {c['prices_as_of']}): total {m['total']:.2f} ="
        f" originals {m['originals_standard']:.2f} standard + {m['originals_archive']:.2f} archived,"
        f" renditions {m['renditions']:.2f}, egress {m['egress']:.2f}, requests {m['requests']:.2f}"
    )
    for name, r in c["per_rendition"].items():
        click.echo(f"  {name:<11} {r['usd_month']:>8.2f} ({r['stored_gb']} GB stored, {r['egress_gb_month']} GB/month sent)")


# -- orphans -------------------------------------------------------------------------------------
@click.command()
@click.option("--delete", "do_delete", is_flag=True, help="delete the orphans found (default: a dry run)")
@click.option("--entity", default=None, metavar="TYPE:ID", help="only this listing's objects and images")
@click.option("--here", is_flag=True, help="run the scan in this process instead of a worker")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write the complete report (JSON lines) here",
)
def orphans(do_delete: bool, entity: str | None, here: bool, report_path: Path | None) -> None:
    """Reconcile the bucket with the database, both ways: objects no row refers to (older than
    ORPHAN_GRACE_S; deleted with --delete) and rows whose objects are missing (a missing original
    marks the image missing, a missing rendition is rendered again; not in a dry run)."""
    from db.models import ScanStatus, StorageScan
    from services.storage_admin import orphans as svc

    scope = _entity(entity, id_required=True)
    assert scope is None or scope[1] is not None  # id_required
    rt = _runtime()
    with rt.unit_of_work() as session:
        scan = svc.create_scan(
            session,
            dry_run=not do_delete,
            grace_s=rt.settings.orphan_grace_s,
            requested_by="cli",
            entity=(scope[0], scope[1]) if scope and scope[1] is not None else None,
            actor=Actor.cli(),
        )
        scan_id = scan.id
    click.echo(
        f"scan {scan_id} ({'deleting orphans' if do_delete else 'dry run'}); "
        f"objects younger than {rt.settings.orphan_grace_s} s are never touched",
        err=True,
    )

    def show(scan: StorageScan) -> None:
        expected = scan.expected_objects or 0
        share = min(1.0, scan.objects_listed / expected) if expected else 0.0
        bar = "#" * int(share * 30) + "-" * (30 - int(share * 30))
        click.echo(
            f"\r[{bar}] {scan.objects_listed} objects listed of ~{expected} recorded  {scan.status}   ", nl=False, err=True
        )

    if here:
        from datetime import UTC, datetime

        def on_page(n: int) -> None:
            with rt.unit_of_work() as session:
                show(session.get_one(StorageScan, scan_id))

        ran = svc.run_scan(rt.unit_of_work, rt.store, rt.queue, scan_id, now=datetime.now(UTC), on_page=on_page)
        if ran is None:
            raise click.ClickException(f"scan {scan_id} is gone (removed while it ran)")
        scan = ran
    else:
        with rt.unit_of_work() as session:
            svc.start_scan(session, rt.queue, session.get_one(StorageScan, scan_id))
        while True:
            with rt.unit_of_work() as session:
                scan = session.get_one(StorageScan, scan_id)
                session.expunge(scan)
            show(scan)
            if scan.status in (ScanStatus.SUCCEEDED, ScanStatus.FAILED):
                break
            time.sleep(1)
    click.echo("", err=True)
    body = svc.scan_json(scan)
    if report_path and scan.report_key:
        report_path.write_bytes(rt.store.get(scan.report_key))
        body["report_file"] = str(report_path)
    click.echo(json.dumps(body, indent=2))
    if scan.status != ScanStatus.SUCCEEDED:
        sys.exit(1)


# -- renditions ----------------------------------------------------------------------------------
@click.group()
def renditions() -> None:
    """Roll out a rendition spec change (width, quality, format, AVIF on/off)."""


@renditions.command("stale")
@click.option("--entity", default=None, metavar="TYPE[:ID]", help="only this entity type or listing")
def renditions_stale(entity: str | None) -> None:
    """Count ready images whose renditions differ from the current specs."""
    from services.images.renditions import count_stale

    rt = _runtime()
    with rt.unit_of_work() as session:
        n = count_stale(session, rt.settings.encoder, _entity(entity))
    click.echo(json.dumps({"stale": n}))


@renditions.command("regenerate")
@click.option("--entity", default=None, metavar="TYPE[:ID]", help="only this entity type or listing")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="at most this many images")
def renditions_regenerate(entity: str | None, limit: int | None) -> None:
    """Queue the stale images on the maintenance queue (low priority): each is rendered anew from
    its original where it differs, switched in one commit, and its superseded objects deleted."""
    from services.images.renditions import stale_ids

    rt = _runtime()
    scope, queued, after = _entity(entity), 0, 0
    while limit is None or queued < limit:
        with rt.unit_of_work() as session:
            page = stale_ids(session, rt.settings.encoder, scope, after=after, limit=min(1000, limit - queued) if limit else 1000)
        if not page:
            break
        rt.queue.regenerate_renditions(page)
        queued, after = queued + len(page), page[-1]
    if queued:
        with rt.unit_of_work() as session:
            record(session, Actor.cli(), Action.REGENERATE, entity=scope, detail={"queued": queued})
    click.echo(json.dumps({"queued": queued, "queue": rt.settings.maintenance_queue}))
