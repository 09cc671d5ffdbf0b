"""Lifted photos and takedowns from an operator's shell (docs/operations.md "Takedowns and
reuse"): `imagepipe reuse list`, `imagepipe takedown ID --reason`, `imagepipe blocklist
list|remove`, `imagepipe audit`. Output is one JSON object per line; the actor of what a command
changes is `cli:<login>`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from services.infra.audit import Action, Actor

from .context import runtime as _runtime
from .storage import _entity


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"an RFC 3339 time, e.g. 2026-12-01T00:00:00Z (got {value!r})") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _lines(rows) -> None:
    for row in rows:
        click.echo(json.dumps(row, sort_keys=True))


@click.group()
def reuse() -> None:
    """Photos matching a photo of another listing their uploader could not write."""


@reuse.command("list")
@click.option("--since", default=None, help="findings recorded at or after this time (RFC 3339)")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def reuse_list(since: str | None, limit: int) -> None:
    """The findings, oldest first, one JSON object per line."""
    from services.moderation.reuse import findings

    rt = _runtime()
    with rt.unit_of_work() as session:
        _lines(findings(session, since=_when(since), limit=limit))


@reuse.command("backfill")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="at most this many images")
def reuse_backfill(limit: int | None) -> None:
    """Hash the ready images processed before hashes were kept (each original read and decoded
    here, as the worker would), so later uploads are compared with them. Idempotent."""
    from db.models import Image
    from services.moderation.hashes import set_hash, unhashed_ids
    from services.moderation.takedown import fingerprint_from_original

    rt = _runtime()
    hashed, failed, after = 0, 0, 0
    while limit is None or hashed + failed < limit:
        with rt.unit_of_work() as session:
            page = unhashed_ids(session, after=after, limit=min(200, limit - hashed - failed) if limit else 200)
        if not page:
            break
        for image_id in page:
            with rt.unit_of_work() as session:
                image = session.get(Image, image_id)
                found = fingerprint_from_original(rt.store, rt.settings, image) if image is not None else None
                if image is None or found is None:
                    failed += 1
                    continue
                set_hash(image, found)
                hashed += 1
        after = page[-1]
    click.echo(json.dumps({"hashed": hashed, "failed": failed}))


@click.command()
@click.argument("image_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--reason", required=True, help="why (kept with the blocklist entry and the audit row)")
def takedown(image_id: int, reason: str) -> None:
    """Delete an image everywhere (original, renditions, CDN) and put its picture on the blocklist."""
    from db.models import Image, ImageStatus
    from services.moderation.takedown import takedown as take_down
    from services.moderation.takedown import takedown_json

    rt = _runtime()
    with rt.unit_of_work() as session:
        image = session.get(Image, image_id)
        if image is None or image.status == ImageStatus.DELETING:
            raise click.ClickException(f"no image {image_id} (or it is being deleted)")
        done = take_down(session, rt.store, rt.queue, rt.settings, image, Actor.cli(), reason.strip()[:1000])
    click.echo(json.dumps(takedown_json(done)))


@click.group()
def blocklist() -> None:
    """The takedown blocklist."""


@blocklist.command("list")
def blocklist_list() -> None:
    """Every entry, one JSON object per line."""
    from services.moderation.blocklist import entries, entry_json

    rt = _runtime()
    with rt.unit_of_work() as session:
        after = None
        while page := entries(session, after_id=after, limit=1000):
            _lines(entry_json(e) for e in page)
            after = page[-1].id


@blocklist.command("remove")
@click.argument("entry_id", type=click.IntRange(1, 2**31 - 1))
def blocklist_remove(entry_id: int) -> None:
    """Remove an entry: its picture may be uploaded again (audited)."""
    from services.moderation.blocklist import remove

    rt = _runtime()
    with rt.unit_of_work() as session:
        if remove(session, Actor.cli(), entry_id) is None:
            raise click.ClickException(f"no blocklist entry {entry_id}")
    click.echo(json.dumps({"removed": entry_id}))


@click.command()
@click.option("--since", default=None, help="rows at or after this time (RFC 3339)")
@click.option("--action", type=click.Choice([a.value for a in Action]), default=None)
@click.option("--actor", default=None, help="user:<id> or cli:<login>")
@click.option("--image", "image_id", type=click.IntRange(1, 2**31 - 1), default=None)
@click.option("--entity", default=None, metavar="TYPE[:ID]")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
def audit(since: str | None, action: str | None, actor: str | None, image_id: int | None, entity: str | None, limit: int) -> None:
    """The audit trail, newest first, one JSON object per line."""
    from services.infra.audit import entries, entry_json

    rt = _runtime()
    with rt.unit_of_work() as session:
        rows = entries(
            session, since=_when(since), action=action, actor=actor, image_id=image_id, entity=_entity(entity), limit=limit
        )
        _lines(entry_json(r) for r in rows)
