"""Check responses against the OpenAPI document as the suite makes them."""

from __future__ import annotations

import re

from flask import Flask, request
from jsonschema import Draft202012Validator

SKIP_STATUSES = (204, 304)


def openapi_path(rule: str) -> str:
    """Flask's `/images/<int:image_id>` as OpenAPI's `/images/{image_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


class ContractCheck:
    """`build` makes the document; it is made again when the declarations it derives from (entity
    kinds, rendition sizes) change, as a test that declares one more does."""

    def __init__(self, build):
        self._build = build
        self._built_for = None
        self.violations: list[str] = []
        self.checked = 0

    @property
    def spec(self) -> dict:
        from pipeline.specs import rendition_sizes
        from services.entities import entity_kinds

        key = (entity_kinds(), rendition_sizes())
        if key != self._built_for:
            self._spec, self._built_for = self._build(), key
        return self._spec

    def _validate(self, schema: dict, body, where: str) -> None:
        root = {**schema, "components": self.spec["components"]}  # so "#/components/..." resolves
        errors = sorted(Draft202012Validator(root).iter_errors(body), key=lambda e: list(e.path))
        for err in errors[:3]:
            self.violations.append(f"{where}: {'/'.join(map(str, err.path)) or '(body)'}: {err.message[:300]}")
        self.checked += 1

    def attach(self, app: Flask) -> Flask:
        app.after_request(self._check)
        return app

    def _check(self, resp):
        method = request.method.lower()
        if method in ("head", "options") or resp.status_code in SKIP_STATUSES:
            return resp
        rule = request.url_rule
        if rule is None:  # no route matched: only the error shape is promised
            if resp.is_json:
                self._validate({"$ref": "#/components/schemas/Error"}, resp.get_json(), f"{method} {request.path}")
            return resp
        path = openapi_path(rule.rule)
        where = f"{method.upper()} {path} -> {resp.status_code}"
        if path in ("/", "/web/{name}", "/api/docs"):
            return resp
        op = self.spec["paths"].get(path, {}).get(method)
        if op is None:
            self.violations.append(f"{where}: not in the OpenAPI document")
            return resp
        documented = op["responses"].get(str(resp.status_code))
        if documented is None:
            self.violations.append(f"{where}: status not documented")
            return resp
        content = documented.get("content", {}).get("application/json")
        if content and resp.is_json:
            self._validate(content["schema"], resp.get_json(), where)
        elif content and not resp.is_json:
            self.violations.append(f"{where}: documented as JSON, answered {resp.mimetype}")
        return resp
