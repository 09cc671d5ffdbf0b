"""Load timings from visitors' browsers (`POST /api/v1/rum`, sent by web/imagepipe.js when a page
opts in with `enableLoadTimings`): what each image's load took, which rendition the browser chose
at which viewport width, and the page's Largest Contentful Paint when it was one of our photos.

Nothing a visitor sends is stored: each beacon only moves Prometheus metrics whose labels are
closed sets (declared rendition names, formats, display contexts, viewport buckets), numbers are
clamped to sane ranges, and a client address may send RUM_PER_MINUTE beacons a minute.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ENTRIES = 50
MAX_BODY_BYTES = 16 * 1024
MAX_SECONDS = 120.0
MAX_BYTES = 64 * 1024 * 1024
CONTEXTS = ("list", "grid", "detail")
# CSS px of the viewport's width: phones, small tablets, tablets, laptops, desktops, wide screens
VIEWPORTS = ((480, "<480"), (768, "480-767"), (1024, "768-1023"), (1440, "1024-1439"), (1920, "1440-1919"))
WIDEST = ">=1920"


def viewport_bucket(width: int) -> str:
    for limit, name in VIEWPORTS:
        if width < limit:
            return name
    return WIDEST


def clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


@dataclass(frozen=True)
class Load:
    rendition: str
    format: str
    context: str
    seconds: float
    bytes: int
    viewport: str


def record(loads: list[Load], lcp: Load | None) -> None:
    from services.infra.metrics import metrics

    m = metrics()
    for load in loads:
        m.image_load_seconds.labels(load.rendition, load.format, load.context).observe(load.seconds)
        m.image_loads.labels(load.rendition, load.context, load.viewport).inc()
        if load.bytes:
            m.image_load_bytes.labels(load.rendition, load.format).inc(load.bytes)
    if lcp is not None:
        m.image_lcp_seconds.labels(lcp.rendition, lcp.context).observe(lcp.seconds)
