"""Talking to the live API the way a client does."""

from __future__ import annotations

import time

import requests


def upload(base: str, headers: dict, entity: str, entity_id: int, path, name: str | None = None):
    with open(path, "rb") as fh:
        return requests.post(
            f"{base}/api/v1/{entity}/{entity_id}/images",
            headers=headers,
            files={"file": (name or path.name, fh, "image/jpeg")},
            timeout=30,
        )


def wait_for_job(
    base: str, headers: dict, status_url: str, timeout_s: float = 90.0, *, poll_s: float = 0.2, session=requests
) -> dict:
    """The job once it has ended, with the statuses seen on the way (`_seen`); the benchmarks
    poll faster, on a session of their own."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = session.get(base + status_url, headers=headers, timeout=10).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("succeeded", "failed", "partial"):
            body["_seen"] = seen
            return body
        time.sleep(poll_s)
    raise AssertionError(f"job did not finish in {timeout_s}s; statuses seen: {seen}")
