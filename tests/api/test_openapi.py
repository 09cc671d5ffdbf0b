"""The OpenAPI document describes every route, and is served and rendered."""

from __future__ import annotations

import requests
from jsonschema import Draft202012Validator

from api.openapi import spec
from tests.support.contract import openapi_path
from tests.support.queues import RecordingQueue

NOT_API = {"/", "/web/{name}", "/api/docs"}  # the upload page, its assets and the docs page itself


def _local_app(settings, tmp_path):
    from api.app import create_app

    return create_app(settings.with_overrides(storage_backend="local", local_storage_dir=tmp_path / "s"), queue=RecordingQueue())


def test_every_registered_route_and_method_is_in_the_document(app, settings, tmp_path):
    doc = spec()
    missing = []
    for flask_app in (app, _local_app(settings, tmp_path)):  # the local backend adds /media routes
        for rule in flask_app.url_map.iter_rules():
            path = openapi_path(rule.rule)
            if path in NOT_API or rule.endpoint == "static":
                continue
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method.lower() not in doc["paths"].get(path, {}):
                    missing.append(f"{method} {path}")
    assert missing == []
    # ...and nothing is documented that does not exist.
    registered = {openapi_path(r.rule) for a in (app, _local_app(settings, tmp_path)) for r in a.url_map.iter_rules()}
    assert set(doc["paths"]) - registered == set()


def test_document_is_well_formed():
    doc = spec()
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = str(doc)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                assert op.get("responses") and op.get("summary"), f"{method} {path}"


def test_spec_is_served_and_rendered(live_server, contract):
    served = requests.get(f"{live_server}/api/v1/openapi.json", timeout=10)
    assert served.status_code == 200 and served.json() == spec()
    page = requests.get(f"{live_server}/api/docs", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "/api/v1/openapi.json" in page.text
    assert contract.checked > 0  # the suite's responses are being validated
