"""The JSON a client reads: services.views, shared with the job callbacks."""
from __future__ import annotations

from services.views import image_json, iso, job_json

__all__ = ["image_json", "iso", "job_json"]
