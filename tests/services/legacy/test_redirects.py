"""The redirect map is written so nginx reads exactly one location per legacy URL, whatever the
file was called (issue 22, M2): checked with crossplane, nginx's own parser in Python."""

from __future__ import annotations

import csv
import io

import crossplane

from services.legacy.redirects import as_csv, as_nginx

NEW = "https://cdn.example.com/public/properties/1/2/large_w1600_q82.jpg"
PLAIN = [
    "/uploads/properties/2/living room 2.jpg",  # the seed's own name: a space
    "/uploads/properties/2/a;b {c}.jpg",  # nginx syntax, harmless once quoted
    "/uploads/properties/2/façade ünïcode.JPG",
    "/uploads/properties/2/comma,name.jpg",
]
HOSTILE = [
    "/uploads/x.jpg { return 302 $arg_next; } location ~ .",  # an open redirect and a catch-all
    '/uploads/quote".jpg',
    "/uploads/back\\slash.jpg",
    "/uploads/tab\tname.jpg",
    "/uploads/$host.jpg",
]


def _locations(config: str, tmp_path) -> list[dict]:
    path = tmp_path / "nginx.conf"
    path.write_text("events {}\nhttp {\n server {\n" + config + " }\n}\n")
    parsed = crossplane.parse(str(path), single=True, check_ctx=True, check_args=True)
    assert parsed["status"] == "ok", parsed["errors"]
    http = next(d for d in parsed["config"][0]["parsed"] if d["directive"] == "http")
    server = http["block"][0]
    return [d for d in server["block"]]


def test_every_plain_name_is_exactly_one_exact_location(tmp_path):
    made = as_nginx([(old, NEW) for old in PLAIN])
    assert made.refused == []
    directives = _locations(made.text, tmp_path)
    assert [d["directive"] for d in directives] == ["location"] * len(PLAIN)
    for old, d in zip(PLAIN, directives, strict=True):
        assert d["args"] == ["=", old]
        assert [(b["directive"], b["args"]) for b in d["block"]] == [("return", ["301", NEW])]


def test_hostile_names_are_refused_and_reported_never_written(tmp_path):
    made = as_nginx([(old, NEW) for old in PLAIN + HOSTILE])
    assert [old for old, _ in made.refused] == HOSTILE
    assert all("$" not in line and "\\" not in line for line in made.text.splitlines())
    directives = _locations(made.text, tmp_path)
    assert [d["args"][1] for d in directives] == PLAIN  # nothing else became a location


def test_csv_round_trips_names_with_commas_and_quotes():
    pairs = [(old, NEW) for old in PLAIN + ['/uploads/quote".jpg']]
    rows = list(csv.reader(io.StringIO(as_csv(pairs).text)))
    assert rows[0] == ["legacy_url", "new_url"] and [tuple(r) for r in rows[1:]] == pairs
