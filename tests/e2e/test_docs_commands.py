"""Every command the docs tell a user to run works where the user runs it.

`imagepipe run` (what `make run` calls) starts in a temporary copy of the project on its embedded
defaults, with nothing configured but free ports; then each fenced block marked ```` ```sh run ````
in README.md, docs/operations.md, docs/migration.md, docs/deploy.md and docs/syndication.md is
executed as written, by bash in the copy's folder with the virtualenv active (`. .venv/bin/activate`), in document order.
A block fails the test on a non-zero exit or a traceback in its output. The only change made to a
block is the ports: the documented defaults (8000 for the API, 8333 for the store, 5555 for
Flower) become the free ones this run uses. The blocks are read from the Markdown, never copied
here: a command added to a marked block is tested by that alone.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cli.seaweed import free_port_block
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

DOCS = ("README.md", "docs/operations.md", "docs/migration.md", "docs/deploy.md", "docs/syndication.md")
_FENCE = re.compile(r"^```sh run[^\n]*\n(.*?)^```", re.S | re.M)
_COPY_IGNORE = shutil.ignore_patterns(
    ".venv", "var", ".git", "__pycache__", ".pytest_cache", "node_modules", "*.pyc", ".mypy_cache", ".ruff_cache"
)


def marked_blocks(text: str) -> list[str]:
    return [m.group(1) for m in _FENCE.finditer(text)]


def test_marked_blocks_are_found():
    """The extraction itself: a marked block is found, an unmarked one (```sh) is not."""
    sample = "x\n```sh run\necho one\n```\n\n```sh\nmake test\n```\n```sh run  # note\necho two\n```\n"
    assert marked_blocks(sample) == ["echo one\n", "echo two\n"]
    blocks = {doc: marked_blocks((ROOT / doc).read_text()) for doc in DOCS}
    # the operator's commands that once failed after `make run` (issue 21) are all in marked blocks
    text = "\n".join(b for bs in blocks.values() for b in bs)
    for command in (
        "imagepipe sweep",
        "imagepipe bucket setup",
        "imagepipe bucket check",
        "imagepipe stats --source bucket",
        "imagepipe migrate verify",
        "imagepipe token",
    ):
        assert command in text, f"{command!r} is in no ```sh run block"
    assert all(blocks[doc] for doc in DOCS[:3]), {d: len(b) for d, b in blocks.items()}


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"imagepipe run exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:  # still booting
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready in {timeout_s}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project running `imagepipe run` on free ports, nothing else configured."""
    copy = tmp_path_factory.mktemp("docs") / "imagepipe"
    shutil.copytree(ROOT, copy, ignore=_COPY_IGNORE)
    venv = Path(sys.executable).parent.parent
    (copy / ".venv").symlink_to(venv)
    base = free_port_block(count=9)
    ports = {"8000": base + 5, "5555": base + 6, "8333": base + 7, "9808": base + 8}
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env = {
        **keep,
        "PORT": str(ports["8000"]),
        "FLOWER_PORT": str(ports["5555"]),
        "SEAWEEDFS_BASE_PORT": str(base),
        "SEAWEEDFS_S3_PORT": str(ports["8333"]),
        "WORKER_METRICS_PORT": str(ports["9808"]),
        "WORKER_CONCURRENCY": "1",
    }
    log_path = copy / "run.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(venv / "bin" / "imagepipe"), "run"], cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_ready(f"http://127.0.0.1:{ports['8000']}/readyz", proc, log_path)
        yield copy, env, ports
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for doc in DOCS:
        for i, block in enumerate(marked_blocks((ROOT / doc).read_text())):
            out.append((doc, i, block))
    return out


@pytest.mark.parametrize(
    ("doc", "index", "block"), _blocks(), ids=lambda v: v if isinstance(v, str) and v.endswith(".md") else None
)
def test_documented_block_runs(project, doc, index, block):
    copy, env, ports = project
    script = block
    for default, port in ports.items():
        script = re.sub(rf"127\.0\.0\.1:{default}\b", f"127.0.0.1:{port}", script)
    run_env = {**env, "PATH": f"{copy / '.venv' / 'bin'}:{env['PATH']}", "VIRTUAL_ENV": str(copy / ".venv")}
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=copy, env=run_env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    where = f"{doc}, run block {index + 1}:\n{block}\n--- output ---\n{output[-4000:]}"
    assert done.returncode == 0, f"exit {done.returncode} in {where}"
    assert "Traceback (most recent call last)" not in output, where
