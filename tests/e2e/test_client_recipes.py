"""The Uppy and FilePond recipes of docs/frontend.md, as a platform team would run them (issue
27): taken from the Markdown (the ```js recipe blocks), put on a page served from a second
origin, with Uppy and FilePond installed from npm by this set-up (no CDN), in Chromium, against
the API (CORS for that origin), a real worker, Redis and SeaweedFS (CORS on the bucket too)."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading

import pytest
import requests

from api.app import create_app
from tests.conftest import ROOT, corpus, new_entity_id
from tests.e2e.test_web import CHROMIUM, playwright_api

pytestmark = pytest.mark.e2e

PACKAGES = ("uppy@6.0.1", "filepond@4.32.12")
WAIT_MS = 120_000
PHOTO = "nikon-p6000_small_640x480.jpg"


def recipes() -> dict[str, str]:
    text = (ROOT / "docs" / "frontend.md").read_text()
    return dict(re.findall(r"^```js recipe ([\w-]+)\n(.*?)^```$", text, re.S | re.M))


@pytest.fixture(scope="module")
def packages():
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (Node.js); the recipes need Uppy and FilePond from the npm registry")
    folder = ROOT / "var" / "test-npm"
    marker = folder / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(PACKAGES):
        folder.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder), *PACKAGES],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode != 0:
            pytest.skip(f"npm install {' '.join(PACKAGES)} failed (no registry here?): {out.stderr[-500:]}")
        marker.write_text(" ".join(PACKAGES))
    return folder / "node_modules"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_server(packages, tmp_path_factory):
    """The platform's page, on an origin of its own."""
    root = tmp_path_factory.mktemp("page")
    shutil.copytree(packages / "uppy" / "dist", root / "uppy")
    shutil.copytree(packages / "filepond" / "dist", root / "filepond")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def api(settings, page_server, celery_worker, store, live_server):
    """The API with the page's origin in CORS_ALLOWED_ORIGINS, on its own port, and the bucket's
    CORS as `imagepipe bucket setup` makes it for those origins."""
    from werkzeug.serving import make_server

    _, origin = page_server
    app = create_app(settings.with_overrides(cors_allowed_origins=(origin, live_server)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rule = {"AllowedMethods": ["GET", "HEAD", "POST"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}
    store.admin().put_bucket_config("cors", [{**rule, "AllowedOrigins": [origin, live_server]}])
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian's chromium package; .ci/run installs it)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, page_server, api, token, listing, recipe: str):
    root, origin = page_server
    blocks = recipes()
    assert {"helpers", "uppy-api", "uppy-direct", "filepond"} <= set(blocks), sorted(blocks)
    config = f"const API = {json.dumps(api)}, TOKEN = {json.dumps(token)}, LISTING = {listing};"
    (root / f"{recipe}.html").write_text(
        f"""<!doctype html><meta charset="utf-8">
<link rel="stylesheet" href="/uppy/uppy.min.css"><link rel="stylesheet" href="/filepond/filepond.min.css">
<script src="/uppy/uppy.min.js"></script><script src="/filepond/filepond.min.js"></script>
<input type="file" id="uppy-api" multiple><input type="file" id="uppy-direct" multiple>
<input type="file" id="filepond"><ul id="log"></ul>
<script>{config}
{blocks["helpers"]}
{blocks[recipe]}</script>"""
    )
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{origin}/{recipe}.html")
    assert not errors, errors
    return page


def _line(page, name: str, expected: str) -> None:
    page.wait_for_function(
        "([name, expected]) => [...document.querySelectorAll('#log li')].some("
        "li => li.dataset.name === name && li.textContent === expected)",
        arg=[name, expected],
        timeout=WAIT_MS,
    )


def _photos(tmp_path, names):
    out = []
    for name, source in names.items():
        path = tmp_path / name
        path.write_bytes(corpus(*source).read_bytes())
        out.append(str(path))
    return out


def _refusal(api, token, listing, recipe, path) -> str:
    """The message the API gives for this file on this path, asked directly."""
    headers = {"Authorization": f"Bearer {token}"}
    data = open(path, "rb").read()
    if recipe == "uppy-direct":
        body = {
            "entity": "properties",
            "entity_id": listing,
            "filename": "x.svg",
            "content_type": "image/svg+xml",
            "size": len(data),
        }
        r = requests.post(f"{api}/api/v1/uploads", json=body, headers=headers, timeout=10)
    else:
        r = requests.post(
            f"{api}/api/v1/properties/{listing}/images", files={"file": ("x.svg", data)}, headers=headers, timeout=10
        )
    assert r.status_code == 415, r.text
    return r.json()["error"]["message"]


@pytest.mark.parametrize("recipe", ["uppy-api", "uppy-direct"])
def test_uppy_recipes_upload_from_another_origin_and_show_the_apis_message(
    browser, page_server, api, make_token, tmp_path, recipe, settings
):
    listing = new_entity_id()
    token = make_token(42, entities=(f"properties:{listing}",))
    page = _open(browser, page_server, api, token, listing, recipe)
    requests_sent: list[str] = []
    page.on("request", lambda r: requests_sent.append(f"{r.method} {r.url}"))
    files = _photos(tmp_path, {"kitchen.jpg": ("photos", PHOTO), "floorplan.svg": ("reject", "libvips-logo.svg")})
    page.set_input_files(f"#{recipe}", files)
    _line(page, "kitchen.jpg", "ready")
    svg = page.locator("#log li[data-name='floorplan.svg']")
    svg.wait_for(timeout=WAIT_MS)
    assert svg.text_content() == _refusal(api, token, listing, recipe, files[1])  # the API's own words
    # a refusal is sent once: no retries of a 415
    target = "/api/v1/uploads" if recipe == "uppy-direct" else f"/api/v1/properties/{listing}/images"
    assert sum(1 for r in requests_sent if r.startswith("POST") and r.endswith(target)) == 2, requests_sent
    to_store = [r for r in requests_sent if r.startswith(f"POST {settings.aws_s3_endpoint_url}/")]
    assert len(to_store) == (1 if recipe == "uppy-direct" else 0), requests_sent  # the photo, straight to the bucket
    page.close()


def test_filepond_recipe_uploads_from_another_origin_and_shows_the_apis_message(browser, page_server, api, make_token, tmp_path):
    listing = new_entity_id()
    page = _open(browser, page_server, api, make_token(42, entities=(f"properties:{listing}",)), listing, "filepond")
    page.set_input_files("input.filepond--browser", _photos(tmp_path, {"garden.jpg": ("photos", PHOTO)}))
    _line(page, "garden.jpg", "ready")
    page.set_input_files("input.filepond--browser", _photos(tmp_path, {"plan.svg": ("reject", "libvips-logo.svg")}))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#log li')].some(li => li.dataset.name === 'plan.svg')", timeout=WAIT_MS
    )
    message = page.locator("#log li[data-name='plan.svg']").text_content()
    token = make_token(42, entities=(f"properties:{listing}",))
    assert message == _refusal(api, token, listing, "filepond", tmp_path / "plan.svg")
    shown = page.locator(".filepond--file-status-main").all_text_contents()
    assert message in shown, (message, shown)  # FilePond's own label shows the API's message
    page.close()
