"""The typed configuration: params.yaml and `-S key=value` overrides are checked against the dataclass field types."""

from __future__ import annotations

from pathlib import Path

import pytest

from sketchseg.config import Config, config_from_dict, load_config
from sketchseg.errors import ConfigError
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]


def test_shipped_params_load_and_round_trip() -> None:
    cfg = load_config(REPO / "params.yaml")
    assert config_from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg.train.lr, float) and isinstance(cfg.train.epochs, int)


def test_overrides_take_yaml_values_with_numbers_normalised() -> None:
    cfg = load_config(REPO / "params.yaml", ["train.lr=1e-4", "foundation.minutes=2", "train.loss.layers=[12]"])
    # YAML 1.1 reads 1e-4 (no dot) as a string; a float field still gets the number
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)
    assert cfg.foundation.minutes == 2.0 and isinstance(cfg.foundation.minutes, float)
    assert cfg.train.loss.layers == [12]
    assert load_config(REPO / "params.yaml", ["model.vv_layers=null"]).model.vv_layers is None
    assert load_config(REPO / "params.yaml", ['model.templates=["a {}", "b {}"]']).model.templates == ("a {}", "b {}")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(REPO / "params.yaml", ["model.templates=[a {}, b {}]"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"epochs": 2.5}}, "params.train.epochs: expected an integer, got 2.5"),
        ({"train": {"epochs": True}}, "params.train.epochs: expected an integer, got True"),
        ({"train": {"lr": "fast"}}, "params.train.lr: expected a number, got 'fast'"),
        ({"train": {"lr": False}}, "params.train.lr: expected a number"),
        ({"model": {"vv": "yes"}}, "params.model.vv: expected true or false, got 'yes'"),
        ({"model": {"finetune": 3}}, "params.model.finetune: expected a string, got 3"),
        ({"train": {"loss": {"layers": ["a"]}}}, r"params.train.loss.layers\[0\]: expected an integer"),
        ({"model": {"templates": "a sketch of {}"}}, "params.model.templates: expected a list"),
        ({"train": {"speed": 1}}, r"params.train: unknown key\(s\) \['speed'\]"),
    ],
)
def test_wrong_types_name_the_parameter(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_defaults_need_no_file_content() -> None:
    assert config_from_dict({}) == Config()


def test_cli_rejects_a_mistyped_override_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "foundation"
    res = run_cli("foundation", "-S", "foundation.lr=fast", "--out", str(out), cwd=REPO)
    assert res.returncode == 2
    assert "params.foundation.lr: expected a number, got 'fast'" in res.stderr
    assert not out.exists()
