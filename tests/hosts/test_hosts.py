"""imagepipe on several hosts (`make test-hosts`): a services host (PostgreSQL, Redis, SeaweedFS),
an API host and two worker hosts, each a network namespace of its own on a private bridge
(tests/hosts/lab.py). The test runner is a client on the same network. Each scenario sends 100
distinct uploads and a fault, then checks what a user would: every accepted upload ready, none
lost, none processed into two sets of renditions. Skips where namespaces cannot be made.
The figures go to docs/reliability.md ("Several hosts")."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from cli.commands import api_command
from services.infra.settings import Settings
from tests.chaos.test_faults import _images
from tests.conftest import ROOT
from tests.hosts.cluster import REQUEST_BUDGET_S, Cluster, running
from tests.hosts.lab import wait_for, why_not

pytestmark = pytest.mark.hosts

UPLOADS = 100
FIGURES: list[dict] = []
SCENARIOS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = why_not()
    if reason:
        pytest.skip(f"several hosts need network namespaces: {reason}")
    with running(tmp_path_factory.mktemp("hosts")) as c:
        c.images = _images(UPLOADS * SCENARIOS)
        yield c
    if len(FIGURES) == SCENARIOS:
        _write_figures()


def _batch(c: Cluster, offset: int, entity_id: int, during, base: str | None = None) -> dict:
    """100 uploads from 8 clients; `during(accepted)` is called from another thread as they go."""
    accepted: list[int] = []
    lock = threading.Lock()
    answers: list[float] = []

    def one(n: int) -> None:
        image_id, _took, times = c.upload(entity_id, c.images[offset + n], base)
        with lock:
            answers.extend(times)
            if image_id is not None:
                accepted.append(image_id)

    fault = threading.Thread(target=during, args=(accepted,))
    fault.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(UPLOADS)))
    fault.join()
    answers.sort()
    return {
        "accepted": len(accepted),
        "requests": len(answers),
        "median_answer_s": round(answers[len(answers) // 2], 2),
        "slowest_answer_s": round(answers[-1], 1),
    }


def _settle(c: Cluster, entity_id: int, timeout_s: float) -> tuple[dict, float]:
    started = time.monotonic()

    def done():
        o = c.outcome(entity_id)
        unfinished = o["statuses"].get("pending", 0) + o["statuses"].get("processing", 0)
        return o if o["images"] and not unfinished else None

    return wait_for(done, timeout_s, "every accepted image terminal", poll_s=1), time.monotonic() - started


def test_a_worker_host_killed_outright_leaves_its_work_to_the_other(cluster):
    c, entity_id = cluster, 700_001
    c.ensure_workers()

    def kill_w2(accepted: list[int]) -> None:
        wait_for(lambda: len(accepted) >= 30, 120, "30 uploads accepted")
        time.sleep(1)
        c.lab["w2"].kill_all()  # every process of the host, not restored

    figures = _batch(c, 0, entity_id, kill_w2)
    outcome, settled_s = _settle(c, entity_id, 240)
    _check(figures, outcome)
    FIGURES.append(
        {
            "scenario": "worker-host-killed",
            "fault": "every process of one worker host SIGKILLed mid-batch, never restored",
            **figures,
            **outcome,
            "settled_s": round(settled_s, 1),
        }
    )


def test_a_worker_host_cut_off_and_restored(cluster):
    c, entity_id = cluster, 700_002
    c.ensure_workers()

    def cut_w1(accepted: list[int]) -> None:
        wait_for(lambda: len(accepted) >= 30, 120, "30 uploads accepted")
        c.lab["w1"].link_down()
        time.sleep(20)
        c.lab["w1"].link_up()

    figures = _batch(c, UPLOADS, entity_id, cut_w1)
    outcome, settled_s = _settle(c, entity_id, 300)
    _check(figures, outcome)
    FIGURES.append(
        {
            "scenario": "worker-host-cut-off",
            "fault": "one worker host's link down for 20 s mid-batch, then up",
            **figures,
            **outcome,
            "settled_s": round(settled_s, 1),
        }
    )


def test_latency_and_loss_between_the_api_host_and_the_services(cluster):
    """200 ms ± 50 ms each way and 2 % of segments held back a retransmission's worth, between the
    API host and every service (a userspace proxy: these kernels have no netem)."""
    from tests.support.latency_proxy import LatencyProxy

    c, entity_id, svc = cluster, 700_003, cluster.lab["svc"].address
    c.ensure_workers()
    gateway = c.lab.gateway
    pg_port, redis_port, s3_port = (
        int(u.rsplit(":", 1)[1].split("/")[0])
        for u in (c.env["DATABASE_URL"], c.env["CELERY_BROKER_URL"], c.env["AWS_S3_ENDPOINT_URL"])
    )
    proxies = [
        LatencyProxy((gateway, 0), (svc, port), delay_s=0.2, jitter_s=0.05, loss=0.02) for port in (pg_port, redis_port, s3_port)
    ]
    env = {
        **c.env,
        "PORT": "8001",
        "DATABASE_URL": c.env["DATABASE_URL"].replace(f"{svc}:{pg_port}", f"{gateway}:{proxies[0].address[1]}"),
        "CELERY_BROKER_URL": c.env["CELERY_BROKER_URL"].replace(f"{svc}:{redis_port}", f"{gateway}:{proxies[1].address[1]}"),
        "AWS_S3_ENDPOINT_URL": f"http://{gateway}:{proxies[2].address[1]}",
    }
    api = c.lab["api"]
    with open(c.folder / "api-slow.log", "w") as out:
        slow_api = api.start(api_command(Settings.from_env(env), workers=2, bind=f"{api.address}:8001"), env=env, log=out)
    base = f"http://{api.address}:8001"

    def ready() -> bool:
        try:
            return requests.get(f"{base}/readyz", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(ready, 90, "the API behind the slow link ready")
        figures = _batch(c, 2 * UPLOADS, entity_id, lambda accepted: None, base=base)
        outcome, settled_s = _settle(c, entity_id, 300)
    finally:
        slow_api.terminate()
        for p in proxies:
            p.close()
    _check(figures, outcome)
    assert figures["requests"] == UPLOADS  # no 503: every upload accepted at the first request
    assert figures["slowest_answer_s"] <= REQUEST_BUDGET_S, figures
    assert figures["median_answer_s"] >= 0.4  # the link was slow: at least one round trip's worth
    assert sum(p.stalled for p in proxies) > 0
    FIGURES.append(
        {
            "scenario": "slow-lossy-link",
            "fault": "200 ms ± 50 ms each way and 2 % of segments stalled 0.4 s, API host ↔ services",
            **figures,
            **outcome,
            "settled_s": round(settled_s, 1),
        }
    )


def test_the_services_host_link_flapping(cluster):
    """The services host's link down 3 s, up 5 s, four times during the batch: every host loses
    PostgreSQL, Redis and the store at once, and gets them back."""
    c, entity_id, svc = cluster, 700_004, cluster.lab["svc"]
    c.ensure_workers()

    def flap(accepted: list[int]) -> None:
        wait_for(lambda: len(accepted) >= 20, 120, "20 uploads accepted")
        for _ in range(4):
            svc.link_down()
            time.sleep(3)
            svc.link_up()
            time.sleep(5)

    figures = _batch(c, 3 * UPLOADS, entity_id, flap)
    outcome, settled_s = _settle(c, entity_id, 300)
    _check(figures, outcome)
    assert figures["slowest_answer_s"] <= REQUEST_BUDGET_S, figures
    FIGURES.append(
        {
            "scenario": "services-link-flapping",
            "fault": "the services host's link down 3 s / up 5 s, 4 times",
            **figures,
            **outcome,
            "settled_s": round(settled_s, 1),
        }
    )


def _check(figures: dict, outcome: dict) -> None:
    assert figures["accepted"] == UPLOADS, figures  # every upload answered 202 in the end
    assert outcome["images"] == UPLOADS  # none lost, none created twice
    assert outcome["statuses"] == {"ready": UPLOADS}, outcome
    assert outcome["renditions"] == outcome["distinct_keys"] == UPLOADS * 2 * 3  # jpeg + webp, 3 sizes, once each


def _write_figures() -> None:
    rows = [
        "| scenario | fault | uploads (requests) | ready | lost | median answer | slowest answer | settled after the batch |"
        " claimed more than once |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in FIGURES:
        ready = f["statuses"].get("ready", 0)
        rows.append(
            f"| {f['scenario']} | {f['fault']} | {f['accepted']} ({f['requests']}) | {ready} | {UPLOADS - ready} |"
            f" {f['median_answer_s']} s | {f['slowest_answer_s']} s | {f['settled_s']} s | {f['claimed_again']} |"
        )
    begin, end = "<!-- hosts:begin (written by tests/hosts/test_hosts.py) -->", "<!-- hosts:end -->"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = f"{begin}\nLast run: {stamp}.\n\n" + "\n".join(rows) + f"\n\n{end}"
    path = ROOT / "docs" / "reliability.md"
    current = path.read_text()
    if begin in current:
        start, stop = current.index(begin), current.index(end) + len(end)
        path.write_text(current[:start] + block + current[stop:])
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "hosts-figures.json").write_text(json.dumps(FIGURES, indent=1))
