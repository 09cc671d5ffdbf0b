"""Legacy URLs map onto files strictly inside the migration's source folder."""

from __future__ import annotations

import os

import pytest

from services.legacy.move import LegacyFileError, legacy_path


def test_legacy_urls_resolve_inside_the_source_only(tmp_path):
    source = tmp_path / "uploads"
    (source / "properties" / "17").mkdir(parents=True)
    (source / "properties" / "17" / "living room.jpg").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    os.symlink(tmp_path / "secret.txt", source / "properties" / "17" / "link.jpg")

    assert (
        legacy_path(source, "/uploads/properties/17/living room.jpg", "/uploads/")
        == (source / "properties" / "17" / "living room.jpg").resolve()
    )
    assert legacy_path(source, "/uploads/properties/17/living%20room.jpg", "/uploads/").name == "living room.jpg"
    for url, code in [
        ("/uploads/../secret.txt", "path_outside_source"),
        ("/uploads/properties/../../secret.txt", "path_outside_source"),
        ("/uploads/%2e%2e/secret.txt", "path_outside_source"),
        ("/uploads/properties/17/link.jpg", "path_outside_source"),  # a link leading out
        ("/uploads/", "path_outside_source"),
        ("/uploads/a%00b.jpg", "path_outside_source"),
        ("/static/x.jpg", "not_a_legacy_url"),
        (None, "not_a_legacy_url"),
    ]:
        with pytest.raises(LegacyFileError) as err:
            legacy_path(source, url, "/uploads/")
        assert err.value.code == code, url


def test_verify_reports_a_link_leading_out_of_the_source_and_goes_on(tmp_path, session, store, settings):
    """Issue 22, L6: verify used to crash (ValueError, no report) on such a link."""
    from services.legacy.move import start_run, verify

    source = tmp_path / "uploads"
    (source / "properties" / "17").mkdir(parents=True)
    (tmp_path / "elsewhere.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere.jpg", source / "properties" / "17" / "link.jpg")
    (source / "properties" / "17" / "stray.jpg").write_bytes(b"y")
    run = start_run(session, source, "properties")
    session.flush()
    result = verify(session, store, settings, run.id)
    mine = [p for p in result["problems"] if p.get("file", "").startswith("properties/17/")]
    assert {"entity_type": "properties", "problem": "link_outside_source", "file": "properties/17/link.jpg",
            "target": str((tmp_path / "elsewhere.jpg").resolve())} in mine  # fmt: skip
    assert {"entity_type": "properties", "problem": "file_without_row", "file": "properties/17/stray.jpg"} in mine
    assert not result["ok"]
    session.rollback()
