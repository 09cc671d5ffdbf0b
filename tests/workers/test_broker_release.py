"""The worker survives losing Redis while it holds unacknowledged messages.

On a lost broker connection Celery's consumer first collects the connection (which releases its
transport) and then closes it; closing a channel that still holds unacknowledged messages makes
kombu's Redis transport restore them through the released transport, which raises AttributeError
('NoneType' object has no attribute 'hostname'). Celery takes that for an unrecoverable error and
the worker exits: a fresh-clone run of the chaos suite's redis-stop scenario lost its worker so.
workers/broker.py guards the restore; the messages stay in Redis' unacked set, and any worker
puts them back on the queue once the visibility timeout has passed."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue

from tests.support.services import PrivateRedis


@pytest.fixture
def redis(tmp_path):
    r = PrivateRedis(tmp_path / "redis").start()
    yield r
    r.stop()


def _deliver_one_unacked(url: str, name: str) -> Connection:
    conn = Connection(url, transport_options={"visibility_timeout": 3600})
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)
    with conn.Producer() as producer:
        producer.publish({"image": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
    message = queue(conn.default_channel).get(no_ack=False)
    assert message is not None and message.payload == {"image": 1}
    return conn


def _as_celery_closes_it(conn: Connection) -> None:
    """What the consumer's on_connection_error_after_connected leaves: the transport released
    (collect), the default channel with its unacked message not yet closed; then close()."""
    conn._do_close_transport()
    conn.close()


def test_a_released_connection_closes_without_the_restore_error_and_the_message_comes_back(redis, monkeypatch):
    from kombu.transport import redis as kombu_redis

    from workers.broker import guard_unacked_restore

    monkeypatch.setattr(kombu_redis.QoS, "restore_unacked", kombu_redis.QoS.restore_unacked)  # undone after
    guard_unacked_restore()
    conn = _deliver_one_unacked(redis.url, "t-release")
    _as_celery_closes_it(conn)  # raised AttributeError before the guard

    import redis as redis_client

    client = redis_client.Redis.from_url(redis.url)
    assert client.llen("t-release") == 0 and client.hlen("unacked") == 1  # kept for the visibility sweep
    with Connection(redis.url, transport_options={"visibility_timeout": 0}) as again:
        again.default_channel.qos.restore_visible(num=10, interval=1)
    assert client.llen("t-release") == 1 and client.hlen("unacked") == 0


def test_without_the_guard_kombu_raises_on_that_close(redis, monkeypatch):
    """Holds the library to the failure the guard is for: when kombu fixes it, this fails and the
    guard can go."""
    from kombu.transport import redis as kombu_redis

    from workers import broker

    monkeypatch.setattr(kombu_redis.QoS, "restore_unacked", broker.ORIGINAL_RESTORE_UNACKED)
    conn = _deliver_one_unacked(redis.url, "t-unguarded")
    with pytest.raises(AttributeError, match="hostname"):
        _as_celery_closes_it(conn)


def test_the_worker_app_installs_the_guard(settings, monkeypatch):
    from kombu.transport import redis as kombu_redis

    from workers import broker
    from workers.app import create_worker_app

    monkeypatch.setattr(kombu_redis.QoS, "restore_unacked", broker.ORIGINAL_RESTORE_UNACKED)
    create_worker_app(settings)
    assert kombu_redis.QoS.restore_unacked is broker._restore_unacked
