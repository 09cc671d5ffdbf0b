"""The deployment files: the compose stack validates with `docker-compose config` (Debian's
docker-compose works without an engine; none runs where the suite runs, so the images are never
built or started here), the Kubernetes manifests validate against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors), and the Dockerfile keeps its promises."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from tests.conftest import ROOT

COMPOSE = shutil.which("docker-compose")
SERVICES = {"postgres", "redis", "seaweedfs", "setup", "api", "worker", "beat", "flower"}


def _compose(tmp_path, env_lines: str, *args: str) -> subprocess.CompletedProcess:
    if COMPOSE is None:
        pytest.skip("docker-compose not installed (Debian's docker-compose package; .ci/run installs it)")
    env_file = tmp_path / "compose.env"
    env_file.write_text(env_lines)
    env = {"PATH": "/usr/bin:/bin", "IMAGEPIPE_ENV_FILE": str(env_file), "HOME": str(tmp_path)}
    return subprocess.run(
        [COMPOSE, "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


FILLED = "POSTGRES_PASSWORD=only-for-validation\nJWT_SECRET=x\nAWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=b\n"


def test_compose_file_validates_with_every_service_healthchecked_and_loopback_ports(tmp_path):
    import yaml

    out = _compose(tmp_path, FILLED, "config")
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert set(config["services"]) == SERVICES
    for name, service in config["services"].items():
        if name != "setup":  # a one-shot job: done is its health
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:{port.get('published')}"
            assert published.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    worker = config["services"]["worker"]
    assert "container_name" not in worker and not worker.get("ports")  # --scale worker=N works
    for role in ("api", "worker", "beat", "flower"):
        assert config["services"][role]["depends_on"]["redis"]["condition"] == "service_healthy"
    for role in ("api", "worker", "beat"):  # schema and bucket before any of them starts
        assert config["services"][role]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert config["services"]["setup"]["command"] == ["imagepipe db upgrade && imagepipe bucket setup"]
    assert config["services"]["api"]["environment"]["IMAGEPIPE_ENV"] == "production"


def test_compose_refuses_to_start_without_its_secrets(tmp_path):
    out = _compose(tmp_path, "JWT_SECRET=x\n", "config")
    assert out.returncode != 0 and "POSTGRES_PASSWORD" in out.stderr


def test_kubernetes_manifests_validate_against_the_schemas():
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed (a test extra)")
    import yaml

    kinds = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            kv.validate(doc, "1.30", strict=True)  # raises on any unknown field or wrong type
            kinds.append((doc["kind"], doc["metadata"]["name"]))
    assert {("Deployment", f"imagepipe-{role}") for role in ("api", "worker", "beat", "flower")} <= set(kinds)
    assert ("Job", "imagepipe-migrate") in kinds
    assert ("HorizontalPodAutoscaler", "imagepipe-worker") in kinds


def test_kubernetes_pods_hold_only_their_roles_secrets_and_start_with_them(tmp_path):
    """One Secret per role (issue 22, L3): each workload's environment (the ConfigMap and its own
    Secret, filled in) is what its process needs in production, and no more."""
    import yaml

    from services.infra.settings import ConfigError, Settings

    k8s = ROOT / "deploy" / "k8s"
    config = yaml.safe_load((k8s / "configmap.yaml").read_text())["data"]
    secrets = {d["metadata"]["name"]: d["stringData"] for d in yaml.safe_load_all((k8s / "secret.example.yaml").read_text())}
    filled = {"DATABASE_URL": "postgresql+psycopg2://imagepipe:pw@db:5432/imagepipe"}
    roles = {"api": "api", "worker": "worker", "beat": "beat", "flower": "flower", "migrate-job": "cli"}
    seen = set()
    for name, role in roles.items():
        doc = next(d for d in yaml.safe_load_all((k8s / f"{name}.yaml").read_text()) if d["kind"] in ("Deployment", "Job"))
        [container] = doc["spec"]["template"]["spec"]["containers"]
        refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        env = dict(config, IMAGEPIPE_VAR_DIR=str(tmp_path / name))
        for ref in refs:
            seen.add(ref)
            env.update({k: filled.get(k, "v" * 40) for k in secrets[ref]})

        def start(env, role=role):  # what the process checks before it serves
            settings = Settings.from_env(env, role=role)
            if role == "flower":
                settings.flower_credentials()

        start(env)  # every variable it needs is there
        for key in {k for ref in refs for k in secrets[ref]} - {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}:
            # every secret the pod holds is one its process refuses to start without
            with pytest.raises(ConfigError, match=key):
                start({k: v for k, v in env.items() if k != key})
    assert seen == set(secrets)
    assert [n for n, s in secrets.items() if "JWT_SECRET" in s] == ["imagepipe-api"]
    assert [n for n, s in secrets.items() if "FLOWER_PASSWORD" in s] == ["imagepipe-flower"]


def test_kubernetes_workers_scale_on_queue_depth_and_outlive_a_task():
    import yaml

    hpa = yaml.safe_load((ROOT / "deploy" / "k8s" / "worker-hpa.yaml").read_text())
    [metric] = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "imagepipe_queue_depth"
    worker = yaml.safe_load((ROOT / "deploy" / "k8s" / "worker.yaml").read_text())
    from services.infra.settings import Settings

    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > Settings.model_fields["task_time_limit_s"].default


def test_dockerfile_runs_as_a_user_from_a_slim_base_with_nothing_from_apt():
    text = (ROOT / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert stages and all("-slim" in line for line in stages)
    final = text.rsplit("\nFROM ", 1)[1]
    assert "\nUSER imagepipe" in final and "useradd" in final
    assert "apt-get" not in text and "gcc" not in text and "build-essential" not in text
    assert 'ENTRYPOINT ["imagepipe"]' in final


def test_compose_store_puts_only_its_s3_port_on_the_network(tmp_path):
    """Issue 22, M3: SeaweedFS's master, volume and filer HTTP APIs take no credentials (the filer
    lists and serves originals, accepts writes under public/). The compose file's own command,
    run here on free ports, answers on a non-loopback address only on its S3 port, which refuses
    anonymous reads of originals."""
    import time

    import yaml

    from cli.seaweed import free_port_block, weed_binary
    from tests.support.services import answers, host_addresses

    addresses = host_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address to connect from")
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["seaweedfs"]
    assert service["entrypoint"] == ["weed"]
    b = free_port_block(count=4)
    ports = {"master": b, "volume": b + 1, "filer": b + 2, "s3": b + 3}
    # the compose command, its fixed ports moved to free ones (the last of a repeated flag wins)
    cmd = [weed_binary(), *service["command"], f"-dir={tmp_path}"]
    cmd += [f"-{name}.port={port}" for name, port in ports.items()]
    cmd += [f"-{name}.port.grpc={port + 10_000}" for name, port in ports.items()]
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "composekey", "AWS_SECRET_ACCESS_KEY": "c" * 32}
    log = open(tmp_path / "weed.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while answers("127.0.0.1", ports["s3"]) is None or answers("127.0.0.1", ports["filer"]) is None:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "weed.log").read_text()[-2000:]
            time.sleep(0.5)
        for address in addresses:
            assert answers(address, ports["s3"]) == 403  # S3: anonymous requests refused
            for name in ("master", "volume", "filer"):
                assert answers(address, ports[name]) is None, f"{name} answers on {address}"
        assert answers("127.0.0.1", ports["filer"]) == 200  # there, for the S3 gateway beside it
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _exported_names(exposition: str) -> set[str]:
    """Every series name a scrape can hold: the families' samples as the text format names them."""
    from prometheus_client.parser import text_string_to_metric_families

    names = set()
    for family in text_string_to_metric_families(exposition):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def test_the_grafana_dashboard_queries_only_metrics_the_code_exports(settings, tmp_path):
    """deploy/grafana/imagepipe.json: every panel's query names series the API's scrape (which
    holds the worker's families too: one Metrics class) declares, and is valid PromQL (promtool)."""
    import json
    import re

    from api.app import create_app
    from tests.support.queues import RecordingQueue

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "imagepipe.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(dashboard["panels"]) >= 15 and all(p["targets"] for p in dashboard["panels"])
    scrape = create_app(settings, queue=RecordingQueue()).test_client().get("/metrics").get_data(as_text=True)
    exported = _exported_names(scrape)
    used = {name for e in exprs for name in re.findall(r"\bimagepipe_[a-z0-9_]+", e)}
    assert used - exported == set(), f"the dashboard queries series nobody exports: {sorted(used - exported)}"
    # what the issue asks to see is there: uploads, stages, queues, failures, egress, load times, reuse, CDN
    for needed in (
        "imagepipe_uploads_total",
        "imagepipe_processing_seconds_bucket",
        "imagepipe_queue_depth",
        "imagepipe_queue_oldest_message_age_seconds",
        "imagepipe_images_finished_total",
        "imagepipe_egress_last_day_bytes",
        "imagepipe_image_load_seconds_bucket",
        "imagepipe_reuse_findings_total",
        "imagepipe_cdn_invalidated_paths_total",
    ):
        assert needed in used, needed
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian's prometheus package; .ci/run installs it): PromQL unchecked")
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
