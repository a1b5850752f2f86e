"""Where the tests find their fixtures (tests/conftest.py): the FS-COCO demo sketches in the repository, the external
sets (CBSC, FrISS) beside it, skipped when missing except where SKETCHSEG_REQUIRE_EXTERNAL=1 (CI) makes that fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DEFAULT_FIXTURES, DEMO, REQUIRE_EXTERNAL, fixture_set, fixtures_root


def test_demo_sketches_ship_with_the_repository(fixtures_dir: Path) -> None:
    assert fixtures_dir == DEMO and DEMO.is_relative_to(Path(__file__).resolve().parent)
    assert sorted(p.name for p in DEMO.glob("*.png")) == [
        "sketch_1.png", "sketch_2.png", "sketch_3.png", "threshold_example.png"
    ]  # fmt: skip
    assert "Apache-2.0" in (DEMO / "README.md").read_text()


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
        assert fixture_set("cbsc", "cbsc_to_qd_mappings.json") == tmp_path / "fixtures" / "cbsc"


def test_a_missing_external_set_is_skipped_with_where_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHSEG_FIXTURES", str(tmp_path))
    monkeypatch.delenv(REQUIRE_EXTERNAL, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        fixture_set("friss", "friss_to_qd_mappings.json")
    message = str(skipped.value)
    assert f"expected {tmp_path / 'friss' / 'friss_to_qd_mappings.json'}" in message
    assert "github.com/aleynakutuk6/CAVT" in message and "set SKETCHSEG_FIXTURES" in message


def test_a_missing_external_set_fails_where_required(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHSEG_FIXTURES", str(tmp_path))
    monkeypatch.setenv(REQUIRE_EXTERNAL, "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        fixture_set("cbsc", "cbsc_to_qd_mappings.json")
    assert f"expected {tmp_path / 'cbsc' / 'cbsc_to_qd_mappings.json'}" in str(failed.value)
    assert f"{REQUIRE_EXTERNAL}=1" in str(failed.value)


def test_ci_requires_the_external_sets() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert f"export {REQUIRE_EXTERNAL}=1" in ci and "make test" in ci
