"""The deployment files: the compose stack validates with `docker-compose config` (Debian's
docker-compose works without an engine; none runs where the suite runs, so the images are never
built or started here), the Kubernetes manifests validate against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors), and the Dockerfile keeps its promises."""

from __future__ import annotations

import shutil
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
