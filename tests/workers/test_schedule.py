"""Beat's sweeps (issue 27): on the maintenance queue, never on the uploads queue the autoscaler
scales on, and never a second one of a sweep while the last one waits unstarted."""

from __future__ import annotations

import uuid

import redis
from celery import Celery

import celeryconfig
from services.infra.settings import Settings
from workers.schedule import QueuedMarks, SweepScheduler


def _beat(settings, tmp_path):
    app = Celery("beat-under-test", set_as_current=False)  # what `imagepipe beat` configures
    app.conf.update(celeryconfig.build(settings))
    celeryconfig.prepare_broker(settings)
    assert app.conf.beat_scheduler == "workers.schedule:SweepScheduler"
    return SweepScheduler(app=app, schedule_filename=str(tmp_path / "beat-schedule"), lazy=False)


def test_with_the_workers_down_each_sweep_waits_queued_once_on_the_maintenance_queue(settings, tmp_path):
    # queues of its own: the suite's worker (a session fixture) takes from the session's queues
    settings = settings.with_overrides(
        task_queue=f"images-{uuid.uuid4().hex[:8]}", maintenance_queue=f"maintenance-{uuid.uuid4().hex[:8]}"
    )
    client = redis.Redis.from_url(settings.broker_url)
    client.delete(settings.task_queue, settings.maintenance_queue)
    beat = _beat(settings, tmp_path)
    sweeps = [e for e in beat.schedule.values() if e.task in celeryconfig.SWEEP_TASKS]
    assert len(sweeps) == len(celeryconfig.SWEEP_TASKS)
    for entry in sweeps:  # this session's queue names: an earlier test may have left a mark
        QueuedMarks.for_settings(settings).release(entry.task)
    try:
        for _tick in range(3):  # three intervals, no worker
            for entry in sweeps:
                beat.apply_entry(entry)
        assert client.llen(settings.task_queue) == 0
        assert client.llen(settings.maintenance_queue) == len(sweeps)
        QueuedMarks.for_settings(settings).release(sweeps[0].task)  # a worker starts that one
        for entry in sweeps:
            beat.apply_entry(entry)
        assert client.llen(settings.maintenance_queue) == len(sweeps) + 1
    finally:
        client.delete(settings.maintenance_queue)
        for entry in sweeps:
            QueuedMarks.for_settings(settings).release(entry.task)


def test_the_filesystem_broker_of_make_run_does_the_same(tmp_path):
    settings = Settings.from_env({"IMAGEPIPE_VAR_DIR": str(tmp_path / "var"), "JWT_SECRET": "j" * 40})
    beat = _beat(settings, tmp_path)
    entry = next(e for e in beat.schedule.values() if e.task in celeryconfig.SWEEP_TASKS)
    for _tick in range(4):
        beat.apply_entry(entry)
    queued = sorted(p.name for p in (settings.var_dir / "broker" / "queue").iterdir())
    assert len(queued) == 1 and queued[0].endswith(f".{settings.maintenance_queue}.msg"), queued
    QueuedMarks.for_settings(settings).release(entry.task)
    beat.apply_entry(entry)
    assert len(list((settings.var_dir / "broker" / "queue").iterdir())) == 2


def test_a_lost_message_delays_the_sweep_only_until_its_mark_expires(tmp_path):
    marks = QueuedMarks("filesystem://", "maintenance", tmp_path, ttl_s=1)
    assert marks.claim("imagepipe.sweep_stuck") and not marks.claim("imagepipe.sweep_stuck")
    import os
    import time

    old = time.time() - 5
    os.utime(tmp_path / "maintenance.imagepipe.sweep_stuck", (old, old))
    assert marks.claim("imagepipe.sweep_stuck")
