"""Evaluation shortcuts that must not change a result: the label map's argmax, groups scored from the same pass,
and a last checkpoint that holds the optimal's weights evaluated once."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from sketchseg.config import config_from_dict
from sketchseg.eval.evaluate import evaluate_model, label_map, samples_from_shards
from sketchseg.eval.report import run_report, same_weights
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel

torch.set_num_threads(1)


def model(seed: int = 0) -> SketchSegModel:
    return SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=seed), seed=seed)).eval()


def test_label_map_is_the_first_maximum_like_torch_argmax() -> None:
    sim = torch.tensor([[[0.1, 0.5, 0.2], [0.3, 0.3, 0.0]],
                        [[0.4, 0.5, 0.1], [0.3, 0.2, 0.0]],
                        [[0.2, 0.1, 0.9], [0.3, 0.1, 0.0]]])  # [C=3, 2, 3], ties in (0, 1), (1, 0), (1, 2)  # fmt: skip
    expected = np.array([[1, 0, 2], [0, 0, 0]])
    assert np.array_equal(label_map(sim), expected)
    assert label_map(sim).dtype == np.int64
    noisy = torch.randn(4, 64, 64, generator=torch.Generator().manual_seed(0)).round(decimals=1)  # many ties
    assert np.array_equal(label_map(noisy), noisy.argmax(dim=0).numpy())


def test_a_group_scores_like_its_sketches_alone(tiny_data: dict) -> None:
    samples = samples_from_shards(tiny_data["shards"], "test", limit=8)
    chosen = {s.id for s in samples[1::2]}
    m = model()
    both = evaluate_model(m, samples, sweep=False, groups={"odd": lambda s: s.id in chosen})
    assert both.groups["odd"] == evaluate_model(m, samples[1::2], sweep=False).summary
    assert both.groups["odd"] != both.summary
    assert both.summary == evaluate_model(m, samples, sweep=False).summary
    none = evaluate_model(m, samples, sweep=False, groups={"none": lambda s: False})
    assert none.groups == {}


def test_same_weights() -> None:
    a, b = model(0), model(0)
    assert same_weights(a, b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-6
    assert not same_weights(a, b)
    assert not same_weights(a, model(1))


def report(tiny_data: dict, tmp_path: Path, last: SketchSegModel, caplog) -> dict:
    train_dir = tmp_path / "train"
    save_checkpoint(model(0), train_dir / "models" / "optimal.pt")
    save_checkpoint(last, train_dir / "models" / "last.pt")
    cfg = config_from_dict({"model": {"backbone": {"name": "sketchseg-test", "seed": 0}, "seed": 0},
                            "eval": {"max_sketches": 4, "overlays": 0}})  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sketchseg.eval.report"):
        out = run_report(cfg, train_dir=train_dir, out=tmp_path / "eval", shards=tiny_data["shards"], baselines=[],
                         progress=False)  # fmt: skip
    return out


def test_a_last_checkpoint_equal_to_the_optimal_is_evaluated_once(tiny_data: dict, tmp_path: Path, caplog) -> None:
    same = report(tiny_data, tmp_path / "same", model(0), caplog)
    logged = caplog.text
    assert "evaluating optimal on val" in logged and "evaluating last" not in logged
    assert "category-token grounding of last" not in logged
    figures = same["figures"]
    for split in ("val", "test"):
        assert figures[split]["last"] == figures[split]["optimal"]
        assert same["details"][split]["last"]["curve"] is None  # as an evaluation of last leaves it
    assert figures["grounding"]["last"] == figures["grounding"]["optimal"]
    other = report(tiny_data, tmp_path / "other", model(1), caplog)
    assert "evaluating last on val" in caplog.text and "category-token grounding of last" in caplog.text
    assert other["figures"]["val"]["last"] != other["figures"]["val"]["optimal"]
