"""An image's task whose retry cannot be sent (the broker unreachable from the worker's host: its
link down, found by tests/hosts) goes back to the queue instead of being dropped."""

from __future__ import annotations

import pytest
from celery import Celery
from celery.canvas import Signature
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from workers.tasks import ImageWorkTask


def test_a_retry_that_cannot_be_sent_requeues_the_message(monkeypatch):
    app = Celery("t", broker="memory://")

    @app.task(bind=True, base=ImageWorkTask, max_retries=5, name="retry_unsent")
    def work(self, image_id):
        return image_id

    def unreachable(self, *args, **kwargs):
        raise OperationalError("Timeout connecting to server")

    monkeypatch.setattr(Signature, "apply_async", unreachable)
    work.push_request(id="t1", retries=0, called_directly=False, is_eager=False, args=[7], kwargs={})
    try:
        with pytest.raises(Reject) as rejected:
            work.retry(exc=RuntimeError("store down"), countdown=1)
    finally:
        work.pop_request()
    assert rejected.value.requeue is True  # Celery's own: requeue=False, the message acked and lost
    assert isinstance(rejected.value.reason, OperationalError)


def test_a_retry_that_is_sent_is_left_to_celery(monkeypatch):
    app = Celery("t", broker="memory://")

    @app.task(bind=True, base=ImageWorkTask, max_retries=5, name="retry_sent")
    def work(self, image_id):
        return image_id

    sent = []
    monkeypatch.setattr(Signature, "apply_async", lambda self, *a, **k: sent.append(self))
    work.push_request(id="t2", retries=0, called_directly=False, is_eager=False, args=[7], kwargs={})
    try:
        from celery.exceptions import Retry

        with pytest.raises(Retry):
            work.retry(exc=RuntimeError("store down"), countdown=1)
    finally:
        work.pop_request()
    assert len(sent) == 1
