"""Where the tests find the fixture sets outside the repository (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DEFAULT_FIXTURES, fixture_set, fixtures_root


def test_fixtures_root_accepts_the_fixtures_folder_or_the_demo_folder(tmp_path: Path, monkeypatch) -> None:
    demo = tmp_path / "fixtures" / "fscoco_demo"
    demo.mkdir(parents=True)
    (demo / "sketch_1.png").write_bytes(b"png")
    (tmp_path / "fixtures" / "cbsc").mkdir()
    (tmp_path / "fixtures" / "cbsc" / "cbsc_to_qd_mappings.json").write_text("{}")
    monkeypatch.delenv("SKETCHSEG_FIXTURES", raising=False)
    assert fixtures_root() == DEFAULT_FIXTURES == Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    for value in (tmp_path / "fixtures", demo):  # the folder of the sets, or (older usage) fscoco_demo itself
        monkeypatch.setenv("SKETCHSEG_FIXTURES", str(value))
        assert fixtures_root() == tmp_path / "fixtures"
        assert fixture_set("fscoco_demo", "sketch_1.png") == demo
        assert fixture_set("cbsc", "cbsc_to_qd_mappings.json") == tmp_path / "fixtures" / "cbsc"


def test_missing_fixtures_fail_with_where_and_how(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHSEG_FIXTURES", str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failed:
        fixture_set("cbsc", "cbsc_to_qd_mappings.json")
    message = str(failed.value)
    assert f"expected {tmp_path / 'cbsc' / 'cbsc_to_qd_mappings.json'}" in message
    assert "set SKETCHSEG_FIXTURES to the folder that holds cbsc/" in message
