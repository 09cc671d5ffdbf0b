"""The benchmark's results: one line per measurement on the terminal, all of them in a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Results:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def report(self, key: str, label: str, ratio: float, target: str, ok: bool, detail: str, **data: Any) -> None:
        self.data[key] = {"ratio": round(ratio, 3), "target": target, "met": ok, "detail": detail, **data}
        print(f"{label:44} {ratio:6.2f}   target {target:10} {'met' if ok else 'NOT met':8} {detail}", flush=True)

    def note(self, key: str, value: Any) -> None:
        self.data[key] = value

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.data, indent=2, default=str))
