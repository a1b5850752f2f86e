"""MLflow tracking and registry: the store, run logging, the pyfunc model, the champion alias, and
`mlflow models serve` answering a real HTTP request."""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sketchseg.config import config_from_dict, flatten
from sketchseg.data.sketch import read_sketch
from sketchseg.errors import InputError
from sketchseg.io_utils import file_sha256
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.network import SketchSegModel
from sketchseg.model.segmenter import Segmenter
from sketchseg.render.labels import decode_labels
from sketchseg.tracking import pyfunc, registry, runs, store
from tests.conftest import encode_image_file, load_champion
from tests.servers import model_server
from tests.test_training_tables import write_training_folder


def sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


SEEDS = {"a": 1, "b": 8, "c": 3}  # seeds whose maps use two categories or more on both cases
CASES = {"sketch_1": ["giraffe", "zebra", "grass"], "sketch_2": ["kite", "tree", "person"]}  # what the tests ask


def untrained_model(seed: int) -> SketchSegModel:
    return SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=seed)))


def distinct_model(seed: int) -> SketchSegModel:
    """An untrained sketchseg-test model whose prompts and visual LayerNorms are redrawn from ``seed`` (prompts
    N(0, 1), LayerNorm weights N(1, 3^2), biases 0). As initialised, untrained models label nearly every stroke of a
    sketch with one category, so that two of them often give the same label map."""
    model = untrained_model(seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.encoder.prompts.tokens.normal_(0.0, 1.0, generator=generator)
        for module in model.clip.visual.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1.0 + 3.0 * torch.randn(module.weight.shape, generator=generator))
                module.bias.zero_()
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three different untrained sketchseg-test models (:func:`distinct_model`) saved as checkpoints."""
    folder = tmp_path_factory.mktemp("ckpts")
    return {
        name: save_checkpoint(distinct_model(seed), folder / f"{name}.pt", meta={"seed": seed})
        for name, seed in SEEDS.items()
    }


@pytest.fixture(scope="module")
def label_maps(checkpoints: dict[str, Path], fixtures_dir: Path) -> dict[tuple[str, str], np.ndarray]:
    """{(checkpoint, sketch): label map} of every checkpoint on the cases the tests ask, checked to tell the
    checkpoints apart: on each sketch every map uses two categories or more and differs from the other checkpoints'
    and from the map of the untrained model it was perturbed from, so a served map equal to one checkpoint's is that
    checkpoint's, served with its weights."""
    maps, untrained = {}, {}
    for name, path in checkpoints.items():
        segmenter, original = Segmenter.from_checkpoint(path), Segmenter(untrained_model(SEEDS[name]))
        for sketch, categories in CASES.items():
            maps[name, sketch] = segmenter.segment(fixtures_dir / f"{sketch}.png", categories=categories).labels
            untrained[name, sketch] = original.segment(fixtures_dir / f"{sketch}.png", categories=categories).labels
    for sketch in CASES:
        for name in SEEDS:
            labels = maps[name, sketch]
            assert len(np.unique(labels[labels >= 0])) >= 2, (sketch, name)
            assert not np.array_equal(labels, untrained[name, sketch]), (sketch, name)
        for one, other in itertools.combinations(SEEDS, 2):
            assert not np.array_equal(maps[one, sketch], maps[other, sketch]), (sketch, one, other)
    return maps


FULL_TEST = {"fingerprint": "f" * 64, "sketches": 300, "split_sketches": 300, "max_sketches": 0}
TEN_SKETCHES = {"fingerprint": "e" * 64, "sketches": 10, "split_sketches": 300, "max_sketches": 10}
BASE = np.random.default_rng(0).uniform(0.1, 0.8, 300)  # per-sketch test mIoU of a reference model


def per_sketch(shift: float, noise: float = 0.01, seed: int = 1) -> list[float]:
    """Per-sketch test mIoU of a model ``shift`` better than BASE on average, with per-sketch noise."""
    return list(BASE + shift + np.random.default_rng(seed).normal(0, noise, len(BASE)))


def with_scores(tags: dict[str, str], scores: list[float]) -> dict[str, str]:
    return {**tags, "test_miou": repr(float(np.mean(scores))), registry.PER_SKETCH_TAG: registry.encode_scores(scores)}


def finished_run(uri: str, experiment: str = "test") -> str:
    client = store.client_for(uri)
    run = client.create_run(store.ensure_experiment(client, experiment))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


# ---------------------------------------------------------------------------------------------------- params and store


def test_config_params_are_the_flattened_resolved_config() -> None:
    cfg = config_from_dict({"train": {"lr": 0.01, "loss": {"layers": [4]}}, "model": {"vv_layers": None}})
    params = runs.config_params(cfg.to_dict())
    assert params["train.lr"] == "0.01"
    assert params["train.loss.layers"] == "[4]"
    assert params["model.vv_layers"] == "null"
    assert params["model.backbone.name"] == cfg.model.backbone.name
    assert params["train.flip"] == "true"
    assert params["model.templates"] == json.dumps(cfg.model.templates)
    assert all(not isinstance(v, dict) for v in flatten(cfg.to_dict()).values())
    assert runs.metric_rows({"tau": 0.6, "test": {"optimal": {"miou": 0.4, "note": "x"}}, "flag": True}) == {
        "tau": 0.6,
        "test/optimal/miou": 0.4,
    }


def test_tracking_uri_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.tracking_uri(workdir=tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert store.tracking_uri(workdir=tmp_path) == "http://127.0.0.1:5999"
    assert store.tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
    assert store.artifact_root(f"sqlite:///{tmp_path}/m.db", "my exp") == (tmp_path / "mlartifacts/my_exp").as_uri()
    assert store.artifact_root("http://127.0.0.1:5999", "e") is None


# ---------------------------------------------------------------------------------------------------- run logging


def test_log_training_run_records_params_metrics_and_artifacts(tmp_path: Path) -> None:
    from PIL import Image

    uri = sqlite_uri(tmp_path)
    write_training_folder(tmp_path / "train")
    started = {"epochs": 2, "weights": "ViT-B-16 with open_clip pretrained weights 'openai', QuickGELU (auto)",
               "activation": "QuickGELU"}  # fmt: skip
    (tmp_path / "train" / "train_metrics.json").write_text(json.dumps(started))
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    metrics = {"tau": 0.62, "val": {"optimal": {"miou": 0.3}}, "test": {"optimal": {"miou": 0.4}}}
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    figures = {  # the report's figures: what metrics.json holds and more
        "tau": 0.62,
        "tau_val_acc_p": 0.5,
        "val": {"optimal": {"miou": 0.3, "fwiou": 0.35}},
        "test": {"optimal": {"miou": 0.4}, "optimal_seen": {"miou": 0.45}},
        "grounding": {"optimal": {"pairs": 12, "own": {"top1": 0.75}}},
    }
    (eval_dir / "report.json").write_text(json.dumps({"figures": figures, "details": {"val": {}}}))
    (eval_dir / "table.md").write_text("| model |\n")
    Image.new("L", (8, 8), 255).save(eval_dir / "curves.png")
    cfg = config_from_dict({"train": {"epochs": 2}})

    run_id = runs.log_training_run(
        cfg.to_dict(), train_dir=tmp_path / "train", eval_dir=eval_dir, experiment="unit", uri=uri, tags={"k": "v"}
    )
    client = store.client_for(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2" and run.data.tags["k"] == "v"
    assert run.data.params["weights.activation"] == "QuickGELU"
    assert run.data.params["weights.weights"] == started["weights"]
    tau = client.get_metric_history(run_id, "step/tau")
    assert sorted((m.step, m.value) for m in tau) == [(1, 0.705), (2, 0.71)]
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "step/loss")) == [
        (1, 1.6),
        (2, 1.4),
        (3, 1.25),
    ]
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "epoch/val_miou")) == [
        (1, 0.2),
        (2, 0.25),
    ]
    assert run.data.metrics["test/optimal/miou"] == 0.4
    assert run.data.metrics["calibrated_tau"] == 0.62
    # the report's figures beyond metrics.json are logged too, its details are not
    assert run.data.metrics["val/optimal/fwiou"] == 0.35 and run.data.metrics["test/optimal_seen/miou"] == 0.45
    assert run.data.metrics["grounding/optimal/own/top1"] == 0.75 and run.data.metrics["tau_val_acc_p"] == 0.5
    assert not any(name.startswith("details") for name in run.data.metrics)
    names = {a.path for folder in ("plots", "eval", "config", "train") for a in client.list_artifacts(run_id, folder)}
    assert {"plots/curves.png", "eval/metrics.json", "eval/report.json", "eval/table.md"} <= names
    assert "config/params.resolved.yaml" in names
    assert {"train/history.json", "train/train_metrics.json"} <= names
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts" / "unit").as_uri()


# ---------------------------------------------------------------------------------------------------- registry


def test_registry_round_trip_and_champion_alias(
    tmp_path: Path, checkpoints: dict, label_maps: dict, fixtures_dir: Path
) -> None:
    """Issue 15's scenario: v1 measured on the whole test split is champion; v2, with a higher test mIoU on 10
    sketches, is registered without the alias and says why; v3, better on the same test as v1, takes it."""
    import mlflow

    uri = sqlite_uri(tmp_path)
    client = store.client_for(uri)
    fluent_uri = mlflow.get_tracking_uri()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = registry.register_checkpoint(
            checkpoints["a"], run_id=finished_run(uri), test_miou=0.409, test_set=FULL_TEST,
            test_per_sketch=per_sketch(0.0), uri=uri,
        )  # fmt: skip
    assert not [w for w in caught if "CloudPickle" in str(w.message)]  # logged from code, not as a pickled object
    assert (first.version, first.champion, first.previous_champion) == ("1", True, None)
    assert first.reason == "no version held the alias"
    assert mlflow.get_tracking_uri() == fluent_uri  # the store was used for the call only
    with store.fluent_store(uri):
        model_dir = Path(mlflow.artifacts.download_artifacts(first.model_uri, dst_path=str(tmp_path / "v1")))
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert requirements == pyfunc.pip_requirements()  # explicit, not inferred
    assert not (model_dir / "python_model.pkl").exists() and (model_dir / "pyfunc_code.py").is_file()

    quick_run = finished_run(uri)
    quick = registry.register_checkpoint(
        checkpoints["b"], run_id=quick_run, test_miou=0.479, test_set=TEN_SKETCHES, uri=uri
    )
    assert (quick.version, quick.champion, quick.previous_champion, quick.previous_miou) == ("2", False, "1", 0.409)
    assert quick.reason == (
        "not comparable: this version's test mIoU was measured on 10 of 300 test sketches (fingerprint eeeeeeeeeeee), "
        "version 1's on 300 of 300 test sketches (fingerprint ffffffffffff)"
    )
    assert str(client.get_model_version_by_alias("sketchseg", "champion").version) == "1"
    tags = client.get_model_version("sketchseg", "2").tags
    assert tags["test_fingerprint"] == "e" * 64 and (tags["test_sketches"], tags["test_max_sketches"]) == ("10", "10")
    assert tags["test_split_sketches"] == "300" and tags["champion_decision"] == quick.reason
    again = registry.register_checkpoint(
        checkpoints["b"], run_id=quick_run, test_miou=0.479, test_set=TEN_SKETCHES, uri=uri
    )
    assert (again.version, again.champion) == ("2", False)  # a retried registration reuses its version
    assert len(client.search_model_versions("name='sketchseg'")) == 2

    better = registry.register_checkpoint(
        checkpoints["c"], run_id=finished_run(uri), test_miou=0.45, test_set=FULL_TEST,
        test_per_sketch=per_sketch(0.041, seed=2), uri=uri,
    )  # fmt: skip
    assert (better.version, better.champion, better.previous_champion) == ("3", True, "1")
    assert better.reason.startswith(
        "test mIoU 0.4500 beats version 1's 0.4090 on the same 300 of 300 test sketches (fingerprint ffffffffffff): "
        "difference +4.1"
    ) and better.reason.endswith("(paired bootstrap 95 %)")
    version = client.get_model_version_by_alias("sketchseg", "champion")
    assert str(version.version) == "3" and float(version.tags["test_miou"]) == 0.45
    assert version.tags["checkpoint_sha256"] == file_sha256(checkpoints["c"])

    model = load_champion(uri=uri)
    path = fixtures_dir / "sketch_1.png"
    image = encode_image_file(path)
    out = model.predict(pd.DataFrame({"image": [image, image], "categories": ["giraffe, zebra, grass", ["cloud"]]}))
    assert list(out.columns) == ["labels_png", "categories", "shares", "stroke_labels"] and len(out) == 2
    strokes = read_sketch(path).strokes
    labels = decode_labels(out["labels_png"][0])
    assert labels.shape == strokes.shape
    assert np.array_equal(labels >= 0, strokes)  # labels exactly on stroke pixels, -1 elsewhere
    assert list(out["categories"][0]) == ["giraffe", "zebra", "grass"]
    assert sum(out["shares"][0].values()) == pytest.approx(1.0)
    assert np.array_equal(labels, label_maps["c", "sketch_1"])  # the champion is checkpoint c, served unchanged
    one = decode_labels(out["labels_png"][1])
    assert set(np.unique(one)) == {-1, 0} and out["shares"][1] == {"cloud": 1.0}

    with pytest.raises(InputError, match="row 0: image: not valid base64"):
        model.predict(pd.DataFrame({"image": ["not base64!"], "categories": ["tree"]}))


def test_champion_decision_compares_like_with_like() -> None:
    full = with_scores(registry.measured_on_tags(FULL_TEST), per_sketch(0.0))
    assert registry.champion_decision({"test_miou": "0.1"}, None, None) == (True, "no version held the alias")
    same_better = with_scores(full, per_sketch(0.02, seed=2))
    moves, reason = registry.champion_decision(same_better, full, "1")
    assert moves and " beats version 1's " in reason and "difference +2.0" in reason
    # higher on average, but within the noise of the test set: the interval holds 0, the alias stays
    noisy = with_scores(full, per_sketch(0.004, noise=0.15, seed=3))
    assert float(noisy["test_miou"]) > float(full["test_miou"])
    moves, reason = registry.champion_decision(noisy, full, "1")
    assert not moves and " does not beat version 1's " in reason and ": difference no difference (" in reason
    assert not registry.champion_decision(full, full, "1")[0]  # equal is no improvement
    quick = {"test_miou": "0.479", **registry.measured_on_tags(TEN_SKETCHES)}
    assert registry.champion_decision(quick, full, "1")[0] is False
    assert registry.champion_decision(full, quick, "1")[0] is False  # a smaller test is no test of the full one
    moves, reason = registry.champion_decision(same_better, {"test_miou": "0.2"}, "4")  # registered before tags
    assert not moves and reason.startswith("not comparable: version 4 does not record what its test mIoU was")
    no_scores = {k: v for k, v in full.items() if k != registry.PER_SKETCH_TAG}
    moves, reason = registry.champion_decision(same_better, no_scores, "1")
    assert not moves and reason.startswith("not comparable: version 1 does not record its per-sketch test mIoU")
    assert registry.champion_decision({"test_miou": "0.9"}, full, "1") == (
        False,
        "not comparable: this version does not record what its test mIoU was measured on",
    )
    no_miou = {k: v for k, v in full.items() if k != "test_miou"}
    assert registry.champion_decision(no_miou, full, "1") == (False, "not comparable: this version has no test mIoU")


def test_per_sketch_scores_round_trip_through_a_tag() -> None:
    scores = per_sketch(0.0)
    text = registry.encode_scores(scores)
    assert len(text) <= 1000  # 300 sketches in 800 characters: well within MLflow's tag length
    np.testing.assert_allclose(registry.decode_scores(text), np.clip(scores, 0, 1), atol=1 / 65535)
    assert registry.decode_scores("not base64!") is None and registry.decode_scores("") is None


def test_alias_follows_the_rule_on_versions_in_a_store(tmp_path: Path) -> None:
    """promote_if_better reads the versions' tags from a real store: a champion registered before versions carried
    a fingerprint keeps the alias until it is moved by hand; then only a better figure on the same test moves it."""
    uri = sqlite_uri(tmp_path)
    client = store.client_for(uri)
    client.create_registered_model("sketchseg")
    full = registry.measured_on_tags(FULL_TEST)
    for shift, tags in ((0.0, {}), (0.1, full), (0.05, full), (0.2, full)):
        client.create_model_version("sketchseg", str(tmp_path), tags=with_scores(tags, per_sketch(shift)))
    assert registry.promote_if_better(client, "sketchseg", "1") == (True, None, "no version held the alias")
    moves, previous, reason = registry.promote_if_better(client, "sketchseg", "2")
    assert (moves, previous) == (False, "1") and "registered before versions carried a test fingerprint" in reason
    client.set_registered_model_alias("sketchseg", "champion", "2")  # by hand, as the module docstring says
    assert registry.promote_if_better(client, "sketchseg", "3")[:2] == (False, "2")
    assert registry.promote_if_better(client, "sketchseg", "4")[:2] == (True, "2")
    assert str(registry.champion_version(client).version) == "4"


# A Python process in which the installed (editable) sketchseg is hidden: only the model's bundled copy can serve it.
HIDDEN_SKETCHSEG = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in str(getattr(f, "__module__", ""))]
sys.path[:] = [p for p in sys.path if p not in ("", {repo!r})]
try:
    import sketchseg
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("sketchseg is still importable from " + str(sketchseg.__file__))
import json, mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({model_dir!r})
out = model.predict(pd.DataFrame({{"image": [{image!r}], "categories": ["kite, tree, person"]}}))
import sketchseg
print(json.dumps({{"labels_png": out["labels_png"][0], "from": sketchseg.__file__}}))
"""


def test_registered_model_carries_sketchseg_code(
    tmp_path: Path, checkpoints: dict, label_maps: dict, fixtures_dir: Path
) -> None:
    import subprocess
    import sys

    import mlflow

    uri = sqlite_uri(tmp_path)
    reg = registry.register_checkpoint(checkpoints["a"], run_id=finished_run(uri), test_miou=0.3, uri=uri)
    mlflow.set_tracking_uri(uri)
    try:
        model_dir = mlflow.artifacts.download_artifacts(reg.model_uri, dst_path=str(tmp_path / "model"))
    finally:
        mlflow.set_tracking_uri(None)
    assert (Path(model_dir) / "code" / "sketchseg" / "model" / "segmenter.py").is_file()
    path = fixtures_dir / "sketch_2.png"
    repo = str(Path(__file__).resolve().parents[1])
    script = HIDDEN_SKETCHSEG.format(repo=repo, model_dir=model_dir, image=encode_image_file(path))
    work = tmp_path / "elsewhere"
    work.mkdir()
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=work, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-500:]
    answer = json.loads(res.stdout.strip().splitlines()[-1])
    assert answer["from"].startswith(str(Path(model_dir).resolve())) or "/code/sketchseg/" in answer["from"]
    assert np.array_equal(decode_labels(answer["labels_png"]), label_maps["a", "sketch_2"])


def test_the_model_answers_with_the_servers_label_codec_and_limit() -> None:
    """One label codec (sketchseg.render.labels, tested in test_render.py) and one category limit, the server's."""
    from sketchseg.render import labels as codec
    from sketchseg.serve.vocabulary import MAX_CATEGORIES

    assert pyfunc.decode_labels is codec.decode_labels and pyfunc.encode_labels is codec.encode_labels
    assert not hasattr(pyfunc, "MAX_CATEGORIES") and MAX_CATEGORIES <= codec.MAX_LABELLED_CATEGORIES
    labels = np.array([[-1, 0, 1], [2, -2, MAX_CATEGORIES - 1]], dtype=np.int16)
    assert np.array_equal(decode_labels(pyfunc.encode_labels(labels)), labels)
    names = [f"c{k}" for k in range(MAX_CATEGORIES + 1)]
    over = f"row 0: got {MAX_CATEGORIES + 1} categories, over the limit of {MAX_CATEGORIES} per request"
    with pytest.raises(InputError, match=over):
        pyfunc.parse_input(pd.DataFrame({"strokes": [[[[0, 0], [9, 9]]]], "categories": [", ".join(names)]}))


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(
    tmp_path: Path, checkpoints: dict, label_maps: dict, fixtures_dir: Path
) -> None:
    uri = sqlite_uri(tmp_path)
    registry.register_checkpoint(checkpoints["a"], run_id=finished_run(uri), test_miou=0.3, uri=uri)
    path = fixtures_dir / "sketch_2.png"
    body = {
        "dataframe_split": {
            "columns": ["image", "categories"],
            "data": [[encode_image_file(path), "kite, tree, person"]],
        }
    }
    t0 = time.perf_counter()
    with model_server("models:/sketchseg@champion", tracking_uri=uri, log=tmp_path / "serve.log") as url:
        started = time.perf_counter() - t0
        request = urllib.request.Request(
            f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert resp.status == 200
            answer = json.loads(resp.read())
    print(f"mlflow models serve: healthy after {started:.1f} s")
    (row,) = answer["predictions"]
    assert row["categories"] == ["kite", "tree", "person"]
    labels = decode_labels(row["labels_png"])
    assert np.array_equal(labels, label_maps["a", "sketch_2"])  # checkpoint a served, not b or c
    expected = Segmenter.from_checkpoint(checkpoints["a"]).segment(path, categories=CASES["sketch_2"])
    assert row["shares"] == pytest.approx(expected.shares)
