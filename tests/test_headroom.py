"""Fine-tuning headroom diagnostics: patch label fractions, the grid oracle and the label probe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sketchseg.errors import ConfigError, DataError
from sketchseg.eval.evaluate import EvalSample, make_eval_sample
from sketchseg.eval.headroom import (
    ProbeConfig,
    fit_label_probe,
    grid_oracle,
    labelled_training_scenes,
    patch_label_fractions,
)
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel


def stroke(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0, 0.0], [x1, y1, 1.0]])


def two_object_sample(long_top_right: bool = True) -> EvalSample:
    """A 'tree' stroke in the top-right quarter of the canvas and a shorter 'house' stroke in the bottom-left one."""
    vector = np.concatenate([stroke(140, 20, 240, 20), stroke(20, 200, 60, 200)])
    return make_eval_sample("s", vector, ["tree", "house"])


def counts(sample: EvalSample) -> tuple[int, int]:
    labels = sample.raster.label_map(sample.stroke_labels, background=-1)
    return int((labels == 0).sum()), int((labels == 1).sum())


def test_label_fractions_sit_in_the_right_cells() -> None:
    sample = two_object_sample()
    frac = patch_label_fractions(sample, (2, 2))  # [C, rows, cols]
    assert frac.shape == (2, 2, 2)
    n_tree, n_house = counts(sample)
    cell = (512 // 2) ** 2
    # tree: row 0 (top), column 1 (right) only; house: row 1, column 0 only (a transposed grid would fail here)
    assert frac[0, 0, 1] * cell == pytest.approx(n_tree, rel=1e-5)
    assert frac[1, 1, 0] * cell == pytest.approx(n_house, rel=1e-5)
    assert float(frac.sum()) * cell == pytest.approx(n_tree + n_house, rel=1e-5)


def test_grid_oracle_is_exact_when_objects_have_their_own_cells() -> None:
    summary = grid_oracle([two_object_sample()], (2, 2))
    assert summary["acc_p"] == 1.0 and summary["miou"] == 1.0


def test_grid_oracle_with_one_cell_predicts_the_majority_by_hand() -> None:
    sample = two_object_sample()
    n_tree, n_house = counts(sample)
    assert n_tree > n_house
    summary = grid_oracle([sample], (1, 1))
    share = n_tree / (n_tree + n_house)
    assert summary["acc_p"] == pytest.approx(share)
    assert summary["miou"] == pytest.approx(share / 2)  # IoU(tree) = share, IoU(house) = 0


def test_grid_oracle_needs_samples() -> None:
    with pytest.raises(DataError, match="empty"):
        grid_oracle([], (2, 2))


def test_label_probe_lowers_its_loss_and_trains_only_the_mode_parameters() -> None:
    torch.manual_seed(0)
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=3), finetune="ln+vpt"))
    samples = [two_object_sample()]
    vector = np.concatenate([stroke(20, 30, 100, 30), stroke(150, 180, 230, 240)])
    samples.append(make_eval_sample("t", vector, ["house", "tree"]))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    # ln+vpt: the visual tower's LayerNorms, the prompts, the cross-attention queries and θ (SPEC §3.7) ...
    mode = {n for n in before if (n.startswith("clip.visual.") and ".ln_" in n) or n.startswith(
        ("encoder.prompts.", "encoder.cross_q.", "threshold."))}  # fmt: skip
    assert {n for n, p in model.named_parameters() if p.requires_grad} == mode and len(mode) == 28
    # ... of which the patch labels reach all but the category level's (queries, θ) and the last block's LN2, whose
    # output feeds only the scene token
    last_ln2 = f"clip.visual.transformer.resblocks.{len(model.clip.visual.transformer.resblocks) - 1}.ln_2."
    reached = {n for n in mode if not n.startswith(("encoder.cross_q.", "threshold.", last_ln2))}
    history = fit_label_probe(model, samples, ProbeConfig(epochs=30, lr=1e-2, batch_size=2))
    assert len(history) == 30
    assert history[-1] < 0.85 * history[0], history
    params = dict(model.named_parameters())
    assert params.keys() == before.keys()
    moved = {n for n, p in params.items() if not torch.equal(p, before[n])}
    assert moved == reached, (sorted(moved - reached), sorted(reached - moved))
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    assert not model.training


def test_label_probe_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="positive"):
        ProbeConfig(epochs=0)
    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=3)))
    with pytest.raises(DataError, match="no annotated sketch"):
        fit_label_probe(model, [], ProbeConfig(epochs=1))


def test_filters_stay_centred_only_where_they_train_and_were_centred() -> None:
    from sketchseg.model.finetune import center_patch_filters, keep_filters_centred

    backbone = BackboneConfig(name="sketchseg-test", seed=3)
    assert not keep_filters_centred(SketchSegModel(ModelConfig(backbone=backbone, finetune="ln+vpt")), True)
    full = SketchSegModel(ModelConfig(backbone=backbone, finetune="full"))
    assert not keep_filters_centred(full)  # random filters are not zero-mean
    assert keep_filters_centred(full, True)
    with torch.no_grad():
        center_patch_filters(full.clip)
    assert keep_filters_centred(full) and not keep_filters_centred(full, False)


@pytest.mark.parametrize("centre", [None, False])
def test_full_probe_keeps_centred_filters_centred(centre: bool | None) -> None:
    from sketchseg.model.finetune import center_patch_filters

    model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=3), finetune="full"))
    with torch.no_grad():
        center_patch_filters(model.clip)
    fit_label_probe(model, [two_object_sample()], ProbeConfig(epochs=3, lr=1e-2, center_patch_filters=centre))
    drift = float(model.clip.visual.conv1.weight.detach().mean(dim=(2, 3)).abs().max())
    assert (drift < 1e-6) if centre is None else (drift > 1e-4)


def test_labelled_training_scenes_are_new_scenes_of_training_participants(tiny_data: dict, tmp_path) -> None:
    root = tiny_data["root"]
    meta = json.loads((root / "synth.json").read_text())
    trainers = sorted(n for n, split in meta["participant_splits"].items() if split["train"] > 0)
    scenes = labelled_training_scenes(root, 2 * len(trainers))
    assert sorted({s.id.split("_")[0] for s in scenes}) == trainers
    assert {s.id.split("_")[1] for s in scenes} == {"g10000", "g10001"}
    assert set().union(*(s.vocabulary for s in scenes)) <= set(meta["seen_categories"])
    again = labelled_training_scenes(root, 2 * len(trainers))
    for a, b in zip(scenes, again, strict=True):
        assert np.array_equal(a.image, b.image) and a.stroke_labels == b.stroke_labels
    # the generator in the dataset's own styles: from index 0 it redraws the dataset's training sketches exactly
    first = labelled_training_scenes(root, len(trainers), first_index=0)
    checked = 0
    for sample in first:
        name = sample.id.split("_")[0]
        written = root / "train" / "sketches" / name / f"{name}_0000.png"
        if written.is_file():  # sketch 0 of this participant went to train (not val)
            assert np.array_equal(np.asarray(Image.open(written).convert("L")), sample.image)
            assert not np.array_equal(sample.image, scenes[first.index(sample)].image)
            checked += 1
    assert checked >= 2
    with pytest.raises(DataError, match="synth.json: not found"):
        labelled_training_scenes(tmp_path, 3)
