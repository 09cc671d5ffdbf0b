"""The web client in a real browser: Playwright driving Debian's Chromium against the API, a real
worker and SeaweedFS. Uploads through the page (one file large enough to go straight to the
bucket), then checks what a visitor's browser does with the gallery, the detail view and the
public listing, and that gallery management persists."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import corpus, new_entity_id
from tests.support.http import upload, wait_for_job

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (a test extra) is not installed")

PHOTOS = ["nikon-p6000_small_640x480.jpg", "tree_1024x772.webp", "flickr-saw_2725x2225.jpg"]
LARGE = "iphone6_3264x2448.jpg"  # 1.9 MB: above the page's ?direct=1000000 threshold
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian's chromium package; .ci/run installs it)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(live_server, celery_worker, store):
    # the page's origin may POST straight to the bucket (what `imagepipe bucket setup` does for
    # CORS_ALLOWED_ORIGINS)
    store.admin().put_bucket_config(
        "cors",
        [
            {
                "AllowedOrigins": [live_server],
                "AllowedMethods": ["GET", "HEAD", "POST"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 600,
            }
        ],
    )
    return live_server


def _shots(tmp_path: Path) -> list[Path]:
    out = [tmp_path]
    if os.environ.get("IMAGEPIPE_SCREENSHOTS"):  # e.g. docs/, to refresh the README's picture
        out.append(Path(os.environ["IMAGEPIPE_SCREENSHOTS"]))
    return out


def _screenshot(page, name: str, tmp_path: Path) -> None:
    for folder in _shots(tmp_path):
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name), full_page=True)


def _wait_loaded(page, selector: str) -> None:
    page.wait_for_function(
        """sel => { const imgs = [...document.querySelectorAll(sel)];
                   return imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=selector,
        timeout=WAIT_MS,
    )


def test_upload_gallery_detail_public_and_management_in_a_real_browser(browser, site, make_token, tmp_path, session):
    entity_id = new_entity_id()
    token = make_token(42, entities=(f"properties:{entity_id}",))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{site}/?direct=1000000#properties/{entity_id}")
    page.fill("input[name=token]", token)
    page.click("form#target button")

    files = [corpus("photos", n) for n in PHOTOS] + [
        corpus("photos", LARGE),
        corpus("reject", "libvips-truncated.jpg"),
        corpus("reject", "libvips-logo.svg"),
    ]
    page.set_input_files("#files", [str(f) for f in files])
    page.wait_for_function(
        """() => { const rows = [...document.querySelectorAll('#uploads li')];
        return rows.length === 6 && rows.every(r => ['ready', 'failed'].includes(r.dataset.phase)); }""",
        timeout=WAIT_MS,
    )
    rows = page.eval_on_selector_all(
        "#uploads li",
        """rows => rows.map(r => ({
        name: r.querySelector('span').textContent, phase: r.dataset.phase, direct: r.dataset.direct,
        progress: r.querySelector('progress').value, state: r.querySelector('.state').textContent}))""",
    )
    by_name = {r["name"]: r for r in rows}
    for name in [*PHOTOS, LARGE]:
        assert by_name[name]["phase"] == "ready" and by_name[name]["progress"] == 100, by_name[name]
    assert by_name[LARGE]["direct"] == "true" and by_name[PHOTOS[0]]["direct"] == "false"
    # the direct upload declared its SHA-256 (computed in the page), pinned as the store's checksum
    from db.models import Upload

    [direct] = session.query(Upload).filter(Upload.entity_id == entity_id).all()
    assert direct.sha256 == hashlib.sha256(corpus("photos", LARGE).read_bytes()).hexdigest()
    # each ready file's row ends with its image
    assert page.locator("#uploads li[data-phase=ready] .ip-image img").count() == 4
    # a corrupt JPEG: accepted, then failed by the worker with the API's message
    truncated = by_name["libvips-truncated.jpg"]
    assert truncated["phase"] == "failed" and truncated["state"].startswith("failed: ")
    failed = [
        i
        for i in requests.get(
            f"{site}/api/v1/properties/{entity_id}/images", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()["images"]
        if i["status"] == "failed"
    ]
    assert [truncated["state"]] == [f"failed: {failed[0]['error']['message']}"]
    # an SVG: refused by the API at once (415), the refusal shown
    svg = by_name["libvips-logo.svg"]
    assert svg["phase"] == "failed" and "JPEG" in svg["state"], svg
    assert "ready" in page.inner_text("#status")

    # the grid: every photo loaded, as WebP, lazily, with its size and alt text
    page.wait_for_selector(".ip-gallery .ip-image img")
    _wait_loaded(page, ".ip-gallery img")
    imgs = page.eval_on_selector_all(
        ".ip-gallery img",
        """imgs => imgs.map(i => ({
        src: i.currentSrc, lazy: i.getAttribute('loading'), natural: i.naturalWidth, alt: i.alt,
        w: i.getAttribute('width'), h: i.getAttribute('height'), decoding: i.getAttribute('decoding')}))""",
    )
    assert len(imgs) == 4
    for img in imgs:
        assert img["natural"] > 0 and img["src"].endswith(".webp") and img["lazy"] == "lazy", img
        assert img["alt"] and img["w"] and img["h"] and img["decoding"] == "async"
    saw = [i for i in imgs if i["w"] == "800"]  # the 2725 px photo: three widths to choose from
    assert saw and "medium_w800" in saw[0]["src"]  # a third of 1400 px: the 800 px rendition
    assert page.locator(".ip-pending").count() == 1  # the failed one, shown to its writer
    _screenshot(page, "grid.png", tmp_path)

    # management: move the first photo later, make the third the cover, then reload
    first_id = page.get_attribute(".ip-item >> nth=0", "data-image-id")
    page.locator(".ip-item >> nth=0").get_by_role("button", name="later").focus()
    page.keyboard.press("Enter")  # the keyboard, not only the mouse
    page.wait_for_function(
        "id => document.querySelectorAll('.ip-item')[1]?.dataset.imageId === id", arg=first_id, timeout=WAIT_MS
    )
    cover = page.locator(".ip-item:has(.ip-open)").nth(2)  # a ready one (a failed image cannot be the cover)
    cover_id = cover.get_attribute("data-image-id")
    cover.get_by_role("button", name="cover").click()
    page.wait_for_function(
        "id => /cover/.test(document.querySelector(`.ip-item[data-image-id='${id}']`)?.textContent)",
        arg=cover_id,
        timeout=WAIT_MS,
    )
    page.reload()
    page.wait_for_selector(".ip-gallery .ip-item")
    assert page.get_attribute(".ip-item >> nth=1", "data-image-id") == first_id
    assert "cover" in page.inner_text(f".ip-item[data-image-id='{cover_id}'] .ip-caption")

    # alt text, saved on change and shown from the API's answer
    item = page.locator(f".ip-item[data-image-id='{cover_id}']")
    item.get_by_role("textbox").fill("Sunny kitchen")
    item.get_by_role("textbox").press("Tab")
    page.wait_for_function(
        "id => document.querySelector(`.ip-item[data-image-id='${id}'] img`)?.alt === 'Sunny kitchen'",
        arg=cover_id,
        timeout=WAIT_MS,
    )
    assert requests.get(f"{site}/api/v1/images/{cover_id}", timeout=10).json()["alt_text"] == "Sunny kitchen"

    # delete one
    ready_items = page.locator(".ip-item:has(.ip-open)")  # the failed one stays, for its writer to see
    doomed = ready_items.nth(3).get_attribute("data-image-id")
    assert doomed != cover_id
    ready_items.nth(3).get_by_role("button", name="Delete").click()
    page.wait_for_function("id => !document.querySelector(`.ip-item[data-image-id='${id}']`)", arg=doomed, timeout=WAIT_MS)
    assert requests.get(f"{site}/api/v1/images/{doomed}", timeout=10).status_code == 404

    # detail view: the large rendition at this width, loaded first
    page.locator(f".ip-item[data-image-id='{cover_id}'] .ip-open").click()
    page.wait_for_selector("#detail img")
    _wait_loaded(page, "#detail img")
    detail = page.eval_on_selector("#detail img", "i => ({src: i.currentSrc, prio: i.getAttribute('fetchpriority')})")
    assert detail["prio"] == "high"
    _screenshot(page, "detail.png", tmp_path)

    # the public listing: what an anonymous visitor sees
    page.click("#back")
    page.click("nav [data-view=public]")
    page.wait_for_selector("#public-view .ip-item")
    _wait_loaded(page, "#public-view img")
    assert page.locator("#public-view .ip-item").count() == 3  # ready ones only, the deleted one gone
    assert page.locator("#public-view button", has_text="Delete").count() == 0
    _screenshot(page, "public.png", tmp_path)
    assert errors == []
    context.close()


def _detail_src(browser, site: str, entity_id: int, token: str, image_id: str, width: int) -> str:
    """A fresh browser (nothing cached) at `width`: which rendition the detail view loads."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.add_init_script(f"sessionStorage.setItem('imagepipe.token', {token!r})")
    page.goto(f"{site}/#properties/{entity_id}")
    page.locator(f".ip-item[data-image-id='{image_id}'] .ip-open").click()
    page.wait_for_selector("#detail img")
    _wait_loaded(page, "#detail img")
    src = page.eval_on_selector("#detail img", "i => i.currentSrc")
    context.close()
    return src


def _upload_one(site: str, token: str, entity_id: int, name: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    r = upload(site, headers, "properties", entity_id, corpus("photos", name))
    assert r.status_code == 202, r.text
    assert wait_for_job(site, headers, r.json()["job"]["status_url"])["status"] == "succeeded"
    return str(r.json()["images"][0]["id"])


def test_the_browser_picks_the_rendition_that_fits_the_viewport(browser, site, make_token):
    entity_id = new_entity_id()
    token = make_token(42, entities=(f"properties:{entity_id}",))
    image_id = _upload_one(site, token, entity_id, "flickr-saw_2725x2225.jpg")
    assert "large_w1600" in _detail_src(browser, site, entity_id, token, image_id, 1400)
    assert "medium_w800" in _detail_src(browser, site, entity_id, token, image_id, 700)


def test_placeholder_until_the_photo_arrives_and_fallback_when_it_cannot(browser, site, make_token):
    entity_id = new_entity_id()
    token = make_token(42, entities=(f"properties:{entity_id}",))
    _upload_one(site, token, entity_id, "nikon-p6000_small_640x480.jpg")
    _upload_one(site, token, entity_id, "tree_1024x772.webp")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    held = []
    page.route("**/public/properties/**", lambda route: held.append(route))  # hold every rendition
    page.goto(f"{site}/#properties/{entity_id}")
    page.wait_for_selector(".ip-gallery .ip-image")
    frames = page.eval_on_selector_all(
        ".ip-gallery .ip-image",
        """fs => fs.map(f => ({
        cls: f.className, canvas: !!f.querySelector('canvas.ip-placeholder'), bg: f.style.backgroundColor}))""",
    )
    assert len(frames) == 2
    assert all("ip-loading" in f["cls"] and f["canvas"] and f["bg"] for f in frames), frames  # placeholder shown
    page.wait_for_function("n => n >= 2", arg=len(held))  # the browser asked for the photos, still held
    for route in held[:1]:
        route.continue_()
    for route in held[1:]:
        route.abort()  # a broken URL
    page.wait_for_selector(".ip-image.ip-loaded")
    page.wait_for_selector(".ip-image.ip-failed .ip-fallback")
    fallback = page.get_attribute(".ip-image.ip-failed .ip-fallback", "aria-label")
    assert fallback.endswith("(unavailable)")
    context.close()


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(browser, site, make_token):
    entity_id = new_entity_id()
    token = make_token(42, entities=(f"properties:{entity_id}",))
    for n in ("nikon-p6000_small_640x480.jpg", "tree_1024x772.webp", "flickr-saw_2725x2225.jpg"):
        _upload_one(site, token, entity_id, n)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.add_init_script(f"sessionStorage.setItem('imagepipe.token', {token!r})")
    page.goto(f"{site}/#properties/{entity_id}")
    page.wait_for_selector(".ip-gallery .ip-item .ip-open")
    reached, outlines = [], set()
    for _ in range(40):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const el = document.activeElement;
            return {tag: el.tagName, label: el.getAttribute('aria-label') || el.name || el.id
                    || el.textContent.trim().slice(0, 30), outline: getComputedStyle(el).outlineStyle,
                    opacity: getComputedStyle(el).opacity}; }""")
        reached.append(f"{info['tag']}:{info['label']}")
        if info["tag"] != "BODY":
            outlines.add(info["outline"])
            assert info["opacity"] == "1", f"{info} has the focus but cannot be seen"
    text = " | ".join(reached)
    for needed in (
        "INPUT:token",
        "SELECT:entity",
        "INPUT:entity_id",
        "BUTTON:Show",
        "DIV:drop",
        "BUTTON:Gallery",
        "BUTTON:Public listing",
        "BUTTON:Open",
        "Move Photo",
        "Make Photo",
        "Delete Photo",
        "INPUT:Alt text of",
    ):
        assert needed in text, f"{needed} not reached by Tab: {text}"
    assert outlines == {"solid"}  # :focus-visible draws an outline on every focused control
    assert page.get_attribute("#status", "aria-live") == "polite"
    assert page.eval_on_selector_all("img", "imgs => imgs.every(i => i.alt.trim().length > 0)")

    # drag and drop reorders as the buttons do, and the view follows the API's answer
    first = page.get_attribute(".ip-item >> nth=0", "data-image-id")
    page.drag_and_drop(".ip-item >> nth=0", ".ip-item >> nth=2")
    page.wait_for_function("id => document.querySelectorAll('.ip-item')[2]?.dataset.imageId === id", arg=first, timeout=WAIT_MS)
    listed = requests.get(f"{site}/api/v1/properties/{entity_id}/images", timeout=10).json()["images"]
    assert str(listed[2]["id"]) == first
    context.close()


CLOUDFRONT = "https://d111111abcdef8.cloudfront.net/public/properties/17/5"


def _image_json(avif: bool, small: bool) -> dict:
    """An image as the API returns it, with CloudFront URLs (AWS_CLOUDFRONT_URL set)."""
    widths = {"thumbnail": 300, "medium": 640 if small else 800, "large": 640 if small else 1600}
    formats = ["jpeg", "webp"] + (["avif"] if avif else [])
    return {
        "id": 5,
        "alt_text": "Kitchen",
        "placeholder": {"blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "dominant_color": "#8a7f73"},
        "renditions": {
            name: {
                f: {
                    "url": f"{CLOUDFRONT}/{name}_w{w}.{f}",
                    "width": w,
                    "height": w * 3 // 4,
                    "bytes": 1,
                    "content_type": f"image/{f}",
                }
                for f in formats
            }
            for name, w in widths.items()
        },
    }


def test_image_sources_with_cloudfront_urls_avif_and_a_small_original(browser, site):
    page = browser.new_page()
    page.goto(f"{site}/")
    out = page.evaluate(
        """async ([full, small]) => {
        const m = await import('/web/imagepipe.js');
        return {list: m.imageSources(full, 'list'), detail: m.imageSources(full, 'detail'),
                small: m.imageSources(small, 'grid')}; }""",
        [_image_json(True, False), _image_json(False, True)],
    )
    page.close()
    lst = out["list"]
    assert [s["type"] for s in lst["sources"]] == ["image/avif", "image/webp"]
    assert lst["sources"][1]["srcset"] == (
        f"{CLOUDFRONT}/thumbnail_w300.webp 300w, {CLOUDFRONT}/medium_w800.webp 800w, {CLOUDFRONT}/large_w1600.webp 1600w"
    )
    assert lst["sources"][0]["sizes"] == "(min-width: 40em) 300px, 100vw"
    assert lst["img"]["src"] == f"{CLOUDFRONT}/thumbnail_w300.jpeg" and lst["img"]["width"] == 300
    assert out["detail"]["img"]["src"] == f"{CLOUDFRONT}/large_w1600.jpeg"
    assert out["detail"]["placeholder"] == {"blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "color": "#8a7f73"}
    # a 640 px original: medium and large are the same width, listed once; no AVIF source
    small = out["small"]
    assert [s["type"] for s in small["sources"]] == ["image/webp"]
    assert small["sources"][0]["srcset"] == f"{CLOUDFRONT}/thumbnail_w300.webp 300w, {CLOUDFRONT}/medium_w640.webp 640w"


def test_the_blurhash_decoder_matches_the_reference(browser, site):
    import blurhash

    hashes = ["LEHV6nWB2yk8pyo0adR*.7kCMdnj", "LKO2?U%2Tw=w]~RBVZRi};RPxuwH", "UBMOZfK1GG%LBBNG,;Rj2skq=eE1s9n4S5Na"]
    page = browser.new_page()
    page.goto(f"{site}/")
    for h in hashes:
        ours = page.evaluate(
            """async (h) => { const m = await import('/web/imagepipe.js');
                                return Array.from(m.decodeBlurhash(h, 16, 12)); }""",
            h,
        )
        reference = blurhash.decode(h, 16, 12)  # rows of [r, g, b] pixels
        flat = [round(c) for row in reference for px in row for c in list(px)[:3]]
        mine = [v for i, v in enumerate(ours) if i % 4 != 3]
        assert len(mine) == len(flat) and max(abs(a - b) for a, b in zip(mine, flat, strict=True)) <= 1, h
    assert page.evaluate("async () => (await import('/web/imagepipe.js')).decodeBlurhash('bad', 4, 4)") is None
    page.close()


def _load_samples(site: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {}
    for family in text_string_to_metric_families(requests.get(f"{site}/metrics", timeout=10).text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_load_timings_reach_the_api_as_a_beacon_and_move_the_histogram(browser, site, make_token):
    """?rum=1 opts the page in (enableLoadTimings): the photos the browser loads are reported with
    sendBeacon, and the API's load-time histogram moves by what the beacon carried."""
    import json

    entity_id = new_entity_id()
    token = make_token(42, entities=(f"properties:{entity_id}",))
    image_id = _upload_one(site, token, entity_id, "flickr-saw_2725x2225.jpg")
    before = _load_samples(site)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.add_init_script(f"sessionStorage.setItem('imagepipe.token', {token!r})")
    # keep a copy of what each beacon carries (the real sendBeacon still sends it)
    page.add_init_script(
        """window.__beacons = []; const send = navigator.sendBeacon.bind(navigator);
        navigator.sendBeacon = (url, data) => { data.text().then(t => window.__beacons.push(t)); return send(url, data); };"""
    )
    page.goto(f"{site}/?rum=1&rum_flush_ms=500#properties/{entity_id}")
    _wait_loaded(page, ".ip-gallery img")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/rum") and r.method == "POST", timeout=WAIT_MS) as sent:
        page.locator(f".ip-item[data-image-id='{image_id}'] .ip-open").click()
        _wait_loaded(page, "#detail img")
    detail_src = page.eval_on_selector("#detail img", "i => i.currentSrc")
    assert sent.value.method == "POST"  # a real request left the page (its Blob body is read from the copy)

    def carried() -> list[dict]:
        return [json.loads(t) for t in page.evaluate("window.__beacons")]

    # the detail photo's load may wait for the next beacon: leaving the page sends what waits
    if not any(x["context"] == "detail" for b in carried() for x in b["loads"]):
        with page.expect_request(lambda r: r.url.endswith("/api/v1/rum"), timeout=WAIT_MS):
            page.evaluate("window.dispatchEvent(new Event('pagehide'))")
    page.wait_for_function("n => window.__beacons.length >= n", arg=1)
    beacons = carried()
    loads = [x for b in beacons for x in b["loads"]]
    detail = [x for x in loads if x["context"] == "detail"]
    grid = [x for x in loads if x["context"] == "grid"]
    assert grid and detail, loads
    d = detail[0]
    assert f"/{d['rendition']}_w" in detail_src and detail_src.endswith({"jpeg": ".jpg"}.get(d["format"], "." + d["format"]))
    assert d["rendition"] == "large" and d["viewport"] == 1400 and d["load_ms"] > 0 and d["bytes"] > 0
    assert set(beacons[0]) <= {"loads", "lcp"}  # nothing else leaves the page
    context.close()

    deadline = time.monotonic() + 10
    while True:
        after = _load_samples(site)
        labels = tuple(sorted({"rendition": "large", "format": d["format"], "context": "detail"}.items()))
        key = ("imagepipe_image_load_seconds_count", labels)
        if after.get(key, 0) - before.get(key, 0) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after.get(key, 0) - before.get(key, 0) == len(detail)
    viewport = tuple(sorted({"rendition": "large", "context": "detail", "viewport": "1024-1439"}.items()))
    assert after.get(("imagepipe_image_loads_total", viewport), 0) - before.get(
        ("imagepipe_image_loads_total", viewport), 0
    ) == len(detail)


def test_an_altered_photo_carries_its_disclosure_and_a_link_to_the_original(browser, site, make_token):
    """RESO MediaAlteration in the web client: the label on the staged photo, the link to the
    unaltered original (which stays public), in the public view a visitor sees; none on the original."""
    entity_id = new_entity_id()
    token = make_token(42, entities=(f"properties:{entity_id}",))
    original = _upload_one(site, token, entity_id, "nikon-p6000_small_640x480.jpg")
    staged = _upload_one(site, token, entity_id, "tree_1024x772.webp")
    headers = {"Authorization": f"Bearer {token}"}
    patch = {"alteration": ["VirtualStagingItemAddition"], "original_of": int(original)}
    assert requests.patch(f"{site}/api/v1/images/{staged}", headers=headers, json=patch, timeout=10).status_code == 200
    original_url = requests.get(f"{site}/api/v1/images/{original}", timeout=10).json()["renditions"]["large"]["jpeg"]["url"]

    context = browser.new_context(viewport={"width": 1200, "height": 900})  # a visitor: no token
    page = context.new_page()
    page.goto(f"{site}/#properties/{entity_id}")
    page.wait_for_selector("#grid-view .ip-item")  # the page has read the listing from the URL
    page.click("nav [data-view=public]")
    page.wait_for_selector(f"#public-view .ip-image[data-image-id='{staged}'] .ip-disclosure")
    note = page.locator(f"#public-view .ip-image[data-image-id='{staged}'] .ip-disclosure")
    assert note.locator(".ip-disclosure-text").inner_text() == "Virtually staged"
    link = note.locator("a.ip-original")
    assert link.inner_text() == "See the original photo" and link.get_attribute("href") == original_url
    assert note.is_visible() and link.is_visible()
    assert page.locator(f"#public-view .ip-image[data-image-id='{original}'] .ip-disclosure").count() == 0
    assert requests.get(original_url, timeout=10).status_code == 200  # the original stays public
    context.close()
