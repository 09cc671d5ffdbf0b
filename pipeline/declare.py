"""How the pipeline declares a tunable: default, bounds and one line of documentation on the
dataclass field itself. services/infra/settings.py turns every such field into a setting read from
the environment (its name in upper case), so nothing here is written twice."""

from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, doc: str, *, lo: int | None = None, hi: int | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi})
