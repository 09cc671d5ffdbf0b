"""The worker's own stage metrics (imagepipe_processing_seconds, read with prometheus_client's
parser), and the plot of the time per stage per image."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

STAGE_LABELS = {"store": "store (what the encodes\ndid not hide)", "fetch": "fetch (what the claim\ndid not hide)"}
PLOT_STAGES = ["fetch", "probe", "decode", "resize", "encode_jpeg", "encode_webp", "encode_png", "placeholders", "store",
               "commit"]  # fmt: skip


def stage_totals(port: int) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) per stage, from the worker's metrics endpoint."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    sums: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "imagepipe_processing_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")) and "stage" in sample.labels:
                totals = sums.setdefault(sample.labels["stage"], [0.0, 0.0])
                totals[0 if sample.name.endswith("_sum") else 1] += sample.value
    return {k: (v[0], v[1]) for k, v in sums.items()}


def stage_means(before: dict, after: dict, images: int) -> dict[str, float]:
    """Seconds per image in each stage between two scrapes."""
    return {stage: (after[stage][0] - before.get(stage, (0.0, 0.0))[0]) / images for stage in after}


def plot(means: dict[str, float], wall_ms: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in PLOT_STAGES if s in means]
    values = [means[s] * 1000 for s in stages]
    inside = means.get("total", 0) * 1000 - sum(values)
    stages = [STAGE_LABELS.get(s, s) for s in stages] + ["rest of the task"]
    values.append(max(inside, 0))
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    bars = ax.barh(stages[::-1], values[::-1], color=["#8a8a8a"] + ["#3b6ea8"] * (len(stages) - 1))
    for bar, v in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width() + 2, bar.get_y() + bar.get_height() / 2, f"{v:.0f} ms", va="center", fontsize=9)
    ax.set_xlabel("milliseconds per image, in one worker process")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(values) * 1.18)
    ax.spines[["top", "right"]].set_visible(False)
    fig.text(0.01, 0.01, f"whole machine: one image every {wall_ms:.0f} ms end to end", fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")
