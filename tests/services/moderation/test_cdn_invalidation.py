"""The CDN invalidation outbox against moto's CloudFront (server mode, real HTTP): a delete, a
takedown and a rendition regeneration queue their paths in their own transaction; the sender
sends them in batches whose CallerReference is the batch id (sent again unchanged after a lost
answer), and backs off on TooManyInvalidationsInProgress with nothing lost."""

from __future__ import annotations

import io
import secrets

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from sqlalchemy import func, select

from db.models import CdnInvalidation, Image
from db.session import make_engine, make_session_factory
from db.unit import unit_of_work
from services.images import manage, process, renditions
from services.images.ingest import IncomingFile, accept, ingest_upload
from services.infra import cdn
from services.infra.audit import Actor
from services.infra.settings import Settings
from services.infra.stores import make_store
from services.moderation.takedown import takedown
from tests.conftest import corpus, private_database
from tests.support.queues import RecordingQueue


@pytest.fixture(scope="module")
def moto_cloudfront():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "cloudfront", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    dist = client.create_distribution(
        DistributionConfig={
            "CallerReference": secrets.token_hex(8),
            "Comment": "imagepipe test",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [{"Id": "s3", "DomainName": "bucket.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "allow-all", "MinTTL": 0},
        }
    )["Distribution"]["Id"]
    yield endpoint, dist, client
    server.stop()


@pytest.fixture
def world(pg, settings_env, moto_cloudfront):
    endpoint, dist, client = moto_cloudfront
    url = private_database(pg, f"cdn{secrets.token_hex(3)}")
    env = {
        **settings_env,
        "DATABASE_URL": url,
        "AWS_CLOUDFRONT_DISTRIBUTION_ID": dist,
        "AWS_CLOUDFRONT_ENDPOINT_URL": endpoint,
        "CDN_INVALIDATION_BATCH": "5",
    }
    settings = Settings.from_env(env)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    yield {
        "env": env,
        "settings": settings,
        "store": make_store(settings),
        "units": lambda: unit_of_work(sessions),
        "sessions": sessions,
        "client": client,
        "dist": dist,
    }
    engine.dispose()


def _ready(world, entity_id: int, salt: int) -> int:
    units, store, settings = world["units"], world["store"], world["settings"]
    data = corpus("photos", "nikon-p6000_small_640x480.jpg").read_bytes() + secrets.token_bytes(4) + bytes([salt])
    queue = RecordingQueue()
    with units() as session:
        result = ingest_upload(
            session, store, settings, entity_type="properties", entity_id=entity_id, user_id=5,
            files=[IncomingFile(io.BytesIO(data), "p.jpg", "image/jpeg")],
        )  # fmt: skip
        accept(session, queue, result)
        image_id = result.images[0].id
    assert process.run(units, store, settings, queue, image_id) == "ready"
    return image_id


def _keys(world, image_id: int) -> list[str]:
    with world["units"]() as session:
        image = session.get_one(Image, image_id)
        return [image.s3_key, *(r.key for r in image.renditions)]


def _pending(world) -> list[str]:
    with world["units"]() as session:
        return sorted(session.scalars(select(CdnInvalidation.path).where(CdnInvalidation.sent_at.is_(None))))


def _sent_batches(world) -> dict[str, list[str]]:
    client, dist = world["client"], world["dist"]
    items = client.list_invalidations(DistributionId=dist)["InvalidationList"].get("Items", [])
    out = {}
    for item in items:
        batch = client.get_invalidation(DistributionId=dist, Id=item["Id"])["Invalidation"]["InvalidationBatch"]
        out.setdefault(batch["CallerReference"], []).extend(batch["Paths"].get("Items", []))
    return out


def test_deletes_takedowns_and_regenerations_invalidate_their_paths_in_batches(world):
    units, store, settings = world["units"], world["store"], world["settings"]
    deleted, taken, regenerated = (_ready(world, 801, s) for s in (1, 2, 3))
    assert _pending(world) == []  # processing a new image changes nothing cached

    deleted_keys, taken_keys = _keys(world, deleted), _keys(world, taken)
    with units() as session:
        manage.delete_image(
            session, store, RecordingQueue(), session.get_one(Image, deleted), settings=settings, actor=Actor("user:9")
        )
    with units() as session:
        takedown(session, store, RecordingQueue(), settings, session.get_one(Image, taken), Actor("user:1"), "complaint")
    before = {(r[0], r[1]): r[2] for r in _renditions(world, regenerated)}
    changed = Settings.from_env({**world["env"], "WEBP_QUALITY": "61"})
    assert renditions.regenerate(units, store, changed, regenerated) == "regenerated"
    superseded = sorted(k for (name, fmt), k in before.items() if fmt == "webp")

    expected = sorted("/" + k for k in deleted_keys + taken_keys + superseded)
    assert _pending(world) == expected  # 7 + 7 + 3 paths
    gauges = _gauges(world)
    assert gauges["imagepipe_cdn_invalidation_pending_paths"] == len(expected)
    assert 0 < gauges["imagepipe_cdn_invalidation_oldest_pending_age_seconds"] < 600

    sent = []
    report = cdn.send_pending(units, settings, on_sent=sent.append)
    assert report.paths == len(expected) and sent == [5, 5, 5, 2] and not report.throttled
    assert _pending(world) == []
    batches = _sent_batches(world)
    assert sorted(p for paths in batches.values() for p in paths) == expected
    with units() as session:
        refs = set(session.scalars(select(CdnInvalidation.batch_id)))
        assert refs == set(batches) and len(refs) == 4
        assert session.scalar(select(func.count()).where(CdnInvalidation.invalidation_id.is_(None))) == 0
    assert cdn.send_pending(units, settings).paths == 0  # nothing left: nothing sent
    assert _gauges(world) == {
        "imagepipe_cdn_invalidation_pending_paths": 0,
        "imagepipe_cdn_invalidation_oldest_pending_age_seconds": 0,
    }


def _gauges(world) -> dict[str, float]:
    """The CDN gauges as the API's /metrics reports them (its database collector)."""
    from services.storage_admin.gauges import DatabaseCollector

    collector = DatabaseCollector(world["sessions"])
    return {
        family.name: family.samples[0].value
        for family in collector.collect()
        if family.name.startswith("imagepipe_cdn_invalidation")
    }


def _renditions(world, image_id):
    with world["units"]() as session:
        return [(r.name, r.format, r.key) for r in session.get_one(Image, image_id).renditions]


class _LostAnswer:
    """CloudFront received the request, the answer never arrived."""

    def __init__(self, client):
        self.client, self.calls = client, []

    def create_invalidation(self, **kw):
        self.calls.append(kw["InvalidationBatch"]["CallerReference"])
        self.client.create_invalidation(**kw)
        raise ReadTimeoutError(endpoint_url="cloudfront")


class _Throttled:
    def __init__(self):
        self.calls = 0

    def create_invalidation(self, **kw):
        self.calls += 1
        raise ClientError({"Error": {"Code": "TooManyInvalidationsInProgress", "Message": "slow down"}}, "CreateInvalidation")


def test_a_batch_sent_again_keeps_its_reference_and_throttling_loses_nothing(world):
    units, settings = world["units"], world["settings"]
    with units() as session:
        assert (
            cdn.queue_paths(session, settings, ["public/properties/1/1/a.jpg", "public/properties/1/1/a.jpg", "public/x.webp"])
            == 2
        )

    throttled = _Throttled()
    with pytest.raises(cdn.Throttled):
        cdn.send_pending(units, settings, client=throttled)
    assert throttled.calls == 1 and _pending(world) == ["/public/properties/1/1/a.jpg", "/public/x.webp"]

    lost = _LostAnswer(world["client"])
    with pytest.raises(ReadTimeoutError):
        cdn.send_pending(units, settings, client=lost)
    assert len(_pending(world)) == 2  # not recorded as sent
    report = cdn.send_pending(units, settings)
    assert report.paths == 2
    # the retry carried the same CallerReference: CloudFront answers it with the invalidation it has
    batches = _sent_batches(world)
    assert lost.calls[0] in batches and batches[lost.calls[0]] == ["/public/properties/1/1/a.jpg", "/public/x.webp"] * 2
    assert _pending(world) == []


def test_nothing_is_queued_without_a_distribution(world, settings):
    with world["units"]() as session:
        assert cdn.queue_paths(session, settings, ["public/a.jpg"]) == 0
    assert _pending(world) == []
