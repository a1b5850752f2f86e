"""MLflow tracking and registry: the store, run logging, the pyfunc model, the champion alias, and
`mlflow models serve` answering a real HTTP request."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sketchseg.config import config_from_dict, flatten
from sketchseg.io_utils import file_sha256
from sketchseg.model.checkpoint import save_checkpoint
from sketchseg.model.config import BackboneConfig, ModelConfig
from sketchseg.model.image import load_sketch
from sketchseg.model.network import SketchSegModel
from sketchseg.model.segmenter import Segmenter
from sketchseg.tracking import pyfunc, registry, runs, store
from tests.servers import model_server
from tests.test_training_tables import write_training_folder


def sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three different untrained sketchseg-test models (different initialisation seeds) saved as checkpoints."""
    folder = tmp_path_factory.mktemp("ckpts")
    out = {}
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        model = SketchSegModel(ModelConfig(backbone=BackboneConfig(name="sketchseg-test", seed=seed)))
        out[name] = save_checkpoint(model, folder / f"{name}.pt", meta={"seed": seed})
    return out


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


def test_registry_round_trip_and_champion_alias(tmp_path: Path, checkpoints: dict, fixtures_dir: Path) -> None:
    import mlflow

    uri = sqlite_uri(tmp_path)
    client = store.client_for(uri)
    fluent_uri = mlflow.get_tracking_uri()
    t0 = time.perf_counter()
    first = registry.register_checkpoint(checkpoints["a"], run_id=finished_run(uri), test_miou=0.30, uri=uri)
    seconds = time.perf_counter() - t0
    assert (first.version, first.champion, first.previous_champion) == ("1", True, None)
    assert seconds < 20  # explicit pip_requirements: no dependency inference
    assert mlflow.get_tracking_uri() == fluent_uri  # the store was used for the call only

    worse_run = finished_run(uri)
    worse = registry.register_checkpoint(checkpoints["b"], run_id=worse_run, test_miou=0.20, uri=uri)
    assert (worse.version, worse.champion, worse.previous_champion, worse.previous_miou) == ("2", False, "1", 0.30)
    assert str(client.get_model_version_by_alias("sketchseg", "champion").version) == "1"
    again = registry.register_checkpoint(checkpoints["b"], run_id=worse_run, test_miou=0.20, uri=uri)
    assert again.version == "2"  # a retried registration reuses its version
    assert len(client.search_model_versions("name='sketchseg'")) == 2

    better = registry.register_checkpoint(checkpoints["c"], run_id=finished_run(uri), test_miou=0.45, uri=uri)
    assert (better.version, better.champion, better.previous_champion) == ("3", True, "1")
    version = client.get_model_version_by_alias("sketchseg", "champion")
    assert str(version.version) == "3" and float(version.tags["test_miou"]) == 0.45
    assert version.tags["checkpoint_sha256"] == file_sha256(checkpoints["c"])

    model = registry.load_champion(uri=uri)
    path = fixtures_dir / "sketch_1.png"
    image = pyfunc.encode_image_file(path)
    out = model.predict(pd.DataFrame({"image": [image, image], "categories": ["giraffe, zebra, grass", ["cloud"]]}))
    assert list(out.columns) == ["labels", "categories", "shares"] and len(out) == 2
    strokes = load_sketch(path).strokes
    labels = pyfunc.decode_labels(out["labels"][0])
    assert labels.shape == strokes.shape
    assert np.array_equal(labels >= 0, strokes)  # labels exactly on stroke pixels, -1 elsewhere
    assert list(out["categories"][0]) == ["giraffe", "zebra", "grass"]
    assert sum(out["shares"][0].values()) == pytest.approx(1.0)
    expected = Segmenter.from_checkpoint(checkpoints["c"]).segment(path, categories=["giraffe", "zebra", "grass"])
    assert np.array_equal(labels, expected.labels)  # the champion is checkpoint c, served unchanged
    one = pyfunc.decode_labels(out["labels"][1])
    assert set(np.unique(one)) == {-1, 0} and out["shares"][1] == {"cloud": 1.0}

    with pytest.raises(Exception, match="row 0: 'image' is not a base64"):
        model.predict(pd.DataFrame({"image": ["not base64!"], "categories": ["tree"]}))


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
print(json.dumps({{"labels": out["labels"][0], "from": sketchseg.__file__}}))
"""


def test_registered_model_carries_sketchseg_code(tmp_path: Path, checkpoints: dict, fixtures_dir: Path) -> None:
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
    script = HIDDEN_SKETCHSEG.format(repo=repo, model_dir=model_dir, image=pyfunc.encode_image_file(path))
    work = tmp_path / "elsewhere"
    work.mkdir()
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=work, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-500:]
    answer = json.loads(res.stdout.strip().splitlines()[-1])
    assert answer["from"].startswith(str(Path(model_dir).resolve())) or "/code/sketchseg/" in answer["from"]
    expected = Segmenter.from_checkpoint(checkpoints["a"]).segment(path, categories=["kite", "tree", "person"])
    assert np.array_equal(pyfunc.decode_labels(answer["labels"]), expected.labels)


def test_labels_encoding_round_trip() -> None:
    labels = np.array([[-1, 0, 1], [2, -1, 254]], dtype=np.int16)
    assert np.array_equal(pyfunc.decode_labels(pyfunc.encode_labels(labels)), labels)
    with pytest.raises(Exception, match="at most 255 categories"):
        pyfunc.encode_labels(np.array([[255]], dtype=np.int16))


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(tmp_path: Path, checkpoints: dict, fixtures_dir: Path) -> None:
    uri = sqlite_uri(tmp_path)
    registry.register_checkpoint(checkpoints["a"], run_id=finished_run(uri), test_miou=0.3, uri=uri)
    path = fixtures_dir / "sketch_2.png"
    body = {
        "dataframe_split": {
            "columns": ["image", "categories"],
            "data": [[pyfunc.encode_image_file(path), "kite, tree, person"]],
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
    labels = pyfunc.decode_labels(row["labels"])
    expected = Segmenter.from_checkpoint(checkpoints["a"]).segment(path, categories=["kite", "tree", "person"])
    assert np.array_equal(labels, expected.labels)
    assert row["shares"] == pytest.approx(expected.shares)
