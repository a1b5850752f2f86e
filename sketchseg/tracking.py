"""MLflow tracking and model registry for training runs, and the tables the pipeline derives from a training folder.

Tracking store: ``MLFLOW_TRACKING_URI`` when set, otherwise a sqlite file ``mlflow.db`` with an artifacts folder
``mlartifacts/`` in the working directory (both git-ignored). For a sqlite store the artifacts go to
``mlartifacts/`` beside the database file; a tracking server chooses its own artifact store.

A training run logs (:func:`log_training_run`):
- params: the resolved configuration, flattened (``train.lr``, ``model.backbone.name``, ...);
- metrics per epoch (``history.json``, step = epoch): ``epoch/train_loss``, ``epoch/val_miou``, ``epoch/val_acc_p``,
  ``epoch/val_acc_s``, ``epoch/tau``, ``epoch/seconds``;
- metrics per optimiser step (``steps.jsonl``, step = global step): ``step/tau``, ``step/loss``, ``step/lr``;
- the evaluation headline numbers (``metrics.json``) as ``val/<model>/<metric>`` and ``test/<model>/<metric>``,
  plus ``calibrated_tau``;
- artifacts: ``config/params.resolved.yaml``, ``eval/`` (metrics.json, report.json, table.md and the plot tables),
  ``plots/`` (the PNGs of the evaluation folder), ``train/`` (history.json, train_metrics.json, calibration.json).

The registered model ``sketchseg`` (:func:`register_checkpoint`) is an MLflow pyfunc model
(:class:`SketchsegPyfunc`) whose artifact ``checkpoint`` is the sketchseg checkpoint file.

Input: a DataFrame with the columns ``image`` (a PNG file as a base64 string) and ``categories`` (a comma-separated
string, or a list of strings). Output, one row per input row: ``labels`` (base64 string of an 8-bit grayscale PNG
the size of the sketch: 0 on background pixels, ``k`` on stroke pixels labelled ``categories[k - 1]``),
``categories`` (the cleaned list the label values index) and ``shares`` (category -> fraction of stroke pixels).
:func:`decode_labels` turns ``labels`` back into the int16 map of :class:`sketchseg.model.segmenter.Segmentation`
(-1 on background).

The alias ``champion`` moves to a new version only when its test mIoU (model-version tag ``test_miou``) is strictly
higher than the current champion's.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # read when mlflow is imported

import mlflow.pyfunc  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from sketchseg.config import flatten  # noqa: E402
from sketchseg.errors import CheckpointError, InputError, SketchsegError  # noqa: E402
from sketchseg.io_utils import atomic_file, file_sha256  # noqa: E402

log = logging.getLogger(__name__)

MODEL_NAME = "sketchseg"
CHAMPION = "champion"
DEFAULT_EXPERIMENT = "sketchseg"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
TEST_MIOU_TAG = "test_miou"
CHECKPOINT_SHA_TAG = "checkpoint_sha256"
MAX_CATEGORIES = 255  # label values fit one 8-bit PNG channel (0 = background)
PLOT_SUFFIXES = (".png",)
EVAL_TABLES = (
    "metrics.json",
    "report.json",
    "table.md",
    "threshold_curve.json",
    "per_category.json",
    "caption_stats.json",
    "train_history.json",
    "tau_steps.json",
)
TRAIN_FILES = ("history.json", "train_metrics.json", "calibration.json")


# --------------------------------------------------------------------------------------------------------------------
# Training outputs -> tables (no MLflow needed)


def read_history(train_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of ``train_dir/history.json``."""
    path = Path(train_dir) / "history.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; run the training first (sketchseg train)")
    history = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(history, list) or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise CheckpointError(f"{path}: expected a list of per-epoch records with an 'epoch' field")
    return history


def read_steps(train_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step records of ``train_dir/steps.jsonl`` (empty when the file is missing)."""
    path = Path(train_dir) / "steps.jsonl"
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{path}:{number}: not a JSON line ({exc})") from None
    return rows


def history_table(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows {epoch, train_loss, val_miou, tau} for the ``train_history.json`` plot."""
    return [{k: r.get(k) for k in ("epoch", "train_loss", "val_miou", "tau")} for r in history]


def tau_table(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows {step, tau} for the ``tau_steps.json`` plot (steps without a τ are skipped)."""
    return [{"step": r["step"], "tau": r["tau"]} for r in steps if r.get("tau") is not None]


def select_checkpoint(history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The paper's optimal (best validation mIoU, earliest on ties) vs last epoch.

    Returns {"optimal": record, "last": record, "chosen": "optimal", "same": bool}, records holding
    epoch, step, val_miou, val_acc_p, train_loss and tau."""
    if not history:
        raise CheckpointError("empty training history: no epoch finished, nothing to select")
    keys = ("epoch", "step", "val_miou", "val_acc_p", "train_loss", "tau")

    def score(r: dict[str, Any]) -> float:
        v = r.get("val_miou")
        return -math.inf if v is None else float(v)

    best = max(history, key=score)  # max keeps the first of equal scores
    last = history[-1]
    return {
        "optimal": {k: best.get(k) for k in keys},
        "last": {k: last.get(k) for k in keys},
        "chosen": "optimal",
        "same": best.get("epoch") == last.get("epoch"),
    }


def category_statistics(category_lists: Iterable[Sequence[str]]) -> dict[str, Any]:
    """Statistics of parsed categories, one list per sketch: sketches, sketches without any category, distinct
    categories, mean categories per sketch and sketches per category (most frequent first, then by name)."""
    counts: Counter[str] = Counter()
    sketches = empty = total = 0
    for categories in category_lists:
        sketches += 1
        unique = list(dict.fromkeys(categories))
        total += len(unique)
        empty += not unique
        counts.update(unique)
    per_category = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return {
        "sketches": sketches,
        "without_categories": empty,
        "distinct_categories": len(counts),
        "mean_categories_per_sketch": total / sketches if sketches else 0.0,
        "sketches_per_category": per_category,
    }


def shard_category_statistics(shards: str | Path, split: str = "train") -> dict[str, Any]:
    """:func:`category_statistics` of the ``categories`` field of ``split``'s shards."""
    from sketchseg.data.shards import make_dataset

    dataset = make_dataset(shards, split, shuffle=False, seed=0, decode=False)
    stats = category_statistics(sample["categories"] for sample in dataset)
    stats["split"] = split
    return stats


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    return path


def write_plot_tables(train_dir: str | Path, eval_dir: str | Path) -> dict[str, Path]:
    """Write ``train_history.json`` and ``tau_steps.json`` (the DVC plots) from a training folder into
    ``eval_dir``; returns their paths."""
    eval_dir = Path(eval_dir)
    return {
        "train_history": write_json(eval_dir / "train_history.json", history_table(read_history(train_dir))),
        "tau_steps": write_json(eval_dir / "tau_steps.json", tau_table(read_steps(train_dir))),
    }


def param_value(value: Any) -> str:
    """A parameter's logged text: strings as they are, everything else as JSON (true, null, [1, 2], 0.001)."""
    return value if isinstance(value, str) else json.dumps(value)


def config_params(config: dict[str, Any]) -> dict[str, str]:
    """The flattened resolved configuration as MLflow params."""
    return {k: param_value(v) for k, v in flatten(config).items()}


def metric_rows(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric leaves of ``metrics.json`` as {"test/optimal/miou": 0.41, "tau": 0.62, ...}."""
    return {
        k: float(v)
        for k, v in flatten(metrics, sep="/").items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


# --------------------------------------------------------------------------------------------------------------------
# Tracking store


def tracking_uri(uri: str | None = None, workdir: str | Path = ".") -> str:
    """The tracking URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///WORKDIR/mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(workdir) / DB_FILE).resolve()}"


def artifact_root(uri: str, experiment: str) -> str | None:
    """Where a new experiment of a sqlite store keeps its artifacts (``mlartifacts/EXPERIMENT`` beside the database
    file); None for other stores (a tracking server decides)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :])
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    return (db.parent / ARTIFACTS_DIR / folder).resolve().as_uri()


def client_for(uri: str | None = None):
    """An ``MlflowClient`` on :func:`tracking_uri` (registry on the same store unless MLFLOW_REGISTRY_URI is set)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(uri))


def ensure_experiment(client, name: str) -> str:
    """The id of experiment ``name``, created (with :func:`artifact_root` for sqlite stores) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise SketchsegError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) or pick another name"
            )
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root(client.tracking_uri, name))


@contextlib.contextmanager
def _fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (``log_model``, ``load_model``) at ``uri`` for the duration of the block (the
    model registry follows the tracking URI unless MLFLOW_REGISTRY_URI says otherwise)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_training_run(
    config: dict[str, Any],
    *,
    train_dir: str | Path,
    eval_dir: str | Path | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    uri: str | None = None,
) -> str:
    """Log one training run (params, per-epoch and per-step metrics, evaluation numbers, artifacts; see the module
    docstring) as a finished MLflow run; returns its run id."""
    from mlflow.entities import Metric, Param, RunTag

    train_dir = Path(train_dir)
    history = read_history(train_dir)
    steps = read_steps(train_dir)
    client = client_for(uri)
    experiment_id = ensure_experiment(client, experiment)
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics: list[Metric] = []
        for record in history:
            for key in ("train_loss", "val_miou", "val_acc_p", "val_acc_s", "tau", "seconds"):
                if isinstance(record.get(key), int | float):
                    metrics.append(Metric(f"epoch/{key}", float(record[key]), now, int(record["epoch"])))
        for row in steps:
            for key in ("tau", "loss", "lr"):
                if isinstance(row.get(key), int | float):
                    metrics.append(Metric(f"step/{key}", float(row[key]), now, int(row["step"])))
        eval_path = Path(eval_dir) if eval_dir is not None else None
        if eval_path is not None and (eval_path / "metrics.json").is_file():
            evaluation = json.loads((eval_path / "metrics.json").read_text(encoding="utf-8"))
            for key, value in metric_rows(evaluation).items():
                name = "calibrated_tau" if key == "tau" else key
                metrics.append(Metric(name, value, now, 0))
        params = [Param(k, v) for k, v in config_params(config).items()]
        for chunk in _batches(params, 100):
            client.log_batch(run_id, params=chunk)
        for chunk in _batches(metrics, 1000):
            client.log_batch(run_id, metrics=chunk)
        client.log_batch(run_id, tags=[RunTag("sketchseg.train_dir", str(train_dir.resolve()))])
        client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), "config/params.resolved.yaml")
        for name in TRAIN_FILES:
            if (train_dir / name).is_file():
                client.log_artifact(run_id, str(train_dir / name), "train")
        if eval_path is not None and eval_path.is_dir():
            for name in EVAL_TABLES:
                if (eval_path / name).is_file():
                    client.log_artifact(run_id, str(eval_path / name), "eval")
            for png in sorted(eval_path.iterdir()):
                if png.suffix in PLOT_SUFFIXES and png.is_file():
                    client.log_artifact(run_id, str(png), "plots")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    log.info("MLflow run %s logged to %s (experiment %s)", run_id, client.tracking_uri, experiment)
    return run_id


# --------------------------------------------------------------------------------------------------------------------
# The pyfunc model


def encode_png(gray: np.ndarray) -> str:
    """uint8 [H, W] -> base64 string of a grayscale PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode_image_file(path: str | Path) -> str:
    """A PNG (or any image) file's bytes as base64, the ``image`` column of the model's input."""
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def encode_labels(labels: np.ndarray) -> str:
    """int [H, W] label map (-1 background) -> the model's ``labels`` output (base64 PNG, value = label + 1)."""
    if labels.max(initial=-1) >= MAX_CATEGORIES:
        raise InputError(f"at most {MAX_CATEGORIES} categories fit the label PNG")
    return encode_png((labels.astype(np.int16) + 1).astype(np.uint8))


def decode_labels(text: str) -> np.ndarray:
    """The model's ``labels`` output -> int16 [H, W] label map with -1 on background."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(text))) as img:
        return np.asarray(img, dtype=np.int16) - 1


def _decode_image(value: Any, row: int):
    from PIL import Image, UnidentifiedImageError

    from sketchseg.model.image import _to_gray, sketch_from_array

    if isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except ValueError:
            raise InputError(f"row {row}: 'image' is not a base64 string of a PNG file") from None
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    else:
        raise InputError(f"row {row}: 'image' must be a base64 string of a PNG file, got {type(value).__name__}")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            gray = _to_gray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"row {row}: 'image' is not a readable image ({exc})") from None
    return sketch_from_array(gray, source=f"row {row}")


def _categories(value: Any, row: int) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise InputError(f"row {row}: 'categories' must be a comma-separated string or a list of strings")


class SketchsegPyfunc(mlflow.pyfunc.PythonModel):
    """Segments sketches with the sketchseg checkpoint stored as the model's artifact ``checkpoint``
    (input and output: see the module docstring)."""

    def __init__(self) -> None:
        self._segmenter = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from sketchseg.model.segmenter import Segmenter

        self._segmenter = Segmenter.from_checkpoint(context.artifacts["checkpoint"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """DataFrame (image, categories) -> DataFrame (labels, categories, shares), one row per sketch."""
        if self._segmenter is None:
            self.load_context(context)
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        missing = {"image", "categories"} - set(model_input.columns)
        if missing:
            raise InputError(f"input is missing the column(s) {sorted(missing)}; expected 'image' and 'categories'")
        rows = []
        for i, (image, categories) in enumerate(zip(model_input["image"], model_input["categories"], strict=True)):
            seg = self._segmenter.segment(_decode_image(image, i), categories=_categories(categories, i))
            rows.append({"labels": encode_labels(seg.labels), "categories": seg.categories, "shares": seg.shares})
        return pd.DataFrame(rows, columns=["labels", "categories", "shares"])


def _model_signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, Array, ColSpec, DataType, Map, Schema

    inputs = Schema([ColSpec(DataType.string, "image"), ColSpec(AnyType(), "categories")])
    outputs = Schema(
        [
            ColSpec(DataType.string, "labels"),
            ColSpec(Array(DataType.string), "categories"),
            ColSpec(Map(DataType.double), "shares"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def example_sketch(size: int = 64) -> np.ndarray:
    """A small hand-made sketch (uint8 [size, size], black strokes on white) for the model's input example."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    s = size
    draw.rectangle((s // 8, s // 2, s // 2, 7 * s // 8), outline=0, width=2)  # a house
    draw.line((s // 8, s // 2, 5 * s // 16, s // 4, s // 2, s // 2), fill=0, width=2)
    draw.line((3 * s // 4, 7 * s // 8, 3 * s // 4, s // 2), fill=0, width=2)  # a tree
    draw.ellipse((5 * s // 8, s // 4, 7 * s // 8, s // 2), outline=0, width=2)
    return np.asarray(img, dtype=np.uint8)


def input_example() -> pd.DataFrame:
    """The model's input example: one row with the hand-made sketch and two categories."""
    return pd.DataFrame({"image": [encode_png(example_sketch())], "categories": ["house, tree"]})


def pip_requirements() -> list[str]:
    """Pinned requirements of the pyfunc model (explicit, so logging does not infer them). sketchseg itself travels
    with the model (:func:`code_paths`)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    dists = ("mlflow", "torch", "torchvision", "open_clip_torch", "numpy", "pandas", "pillow", "safetensors", "tqdm",
             "pyyaml")  # fmt: skip
    for dist in dists:
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            reqs.append(dist)
    return reqs


def code_paths() -> list[str]:
    """The sketchseg package, bundled with the model so that it loads and serves where sketchseg is not installed."""
    return [str(Path(__file__).resolve().parent)]


# --------------------------------------------------------------------------------------------------------------------
# Registry


@dataclass
class Registration:
    """The outcome of :func:`register_checkpoint`."""

    name: str
    version: str
    test_miou: float | None
    champion: bool  # this version holds the alias after the call
    previous_champion: str | None  # version that held the alias before, if any
    previous_miou: float | None
    model_uri: str


def _version_miou(client, version) -> float | None:
    """A version's test mIoU: its ``test_miou`` tag, else its run's ``test/optimal/miou`` metric."""
    tag = (version.tags or {}).get(TEST_MIOU_TAG)
    if tag not in (None, ""):
        try:
            return float(tag)
        except ValueError:
            return None
    if version.run_id:
        try:
            value = client.get_run(version.run_id).data.metrics.get("test/optimal/miou")
        except Exception:  # the run may be gone (deleted), the version stays usable
            return None
        return None if value is None else float(value)
    return None


def champion_version(client, name: str = MODEL_NAME, alias: str = CHAMPION):
    """The model version holding ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def promote_if_better(
    client, name: str, version: str, test_miou: float | None, alias: str = CHAMPION
) -> tuple[bool, str | None, float | None]:
    """Give ``alias`` to ``version`` when no version holds it, or when ``test_miou`` is strictly higher than the
    holder's. Returns (this version holds the alias, previous holder's version, previous holder's mIoU)."""
    current = champion_version(client, name, alias)
    if current is None:
        client.set_registered_model_alias(name, alias, version)
        return True, None, None
    if str(current.version) == str(version):
        return True, str(current.version), test_miou
    previous = _version_miou(client, current)
    better = test_miou is not None and (previous is None or test_miou > previous)
    if better:
        client.set_registered_model_alias(name, alias, version)
    return better, str(current.version), previous


def register_checkpoint(
    checkpoint: str | Path,
    *,
    run_id: str,
    test_miou: float | None,
    name: str = MODEL_NAME,
    alias: str = CHAMPION,
    uri: str | None = None,
    tags: dict[str, str] | None = None,
) -> Registration:
    """Log ``checkpoint`` as the pyfunc model of run ``run_id``, register it as a version of ``name`` (tags
    ``test_miou`` and ``checkpoint_sha256``) and move ``alias`` to it if it beats the current holder
    (:func:`promote_if_better`). Calling it again for the same run and checkpoint (a retry) reuses the version."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: checkpoint not found; run the training first (sketchseg train)")
    resolved = tracking_uri(uri)
    client = client_for(resolved)
    sha = file_sha256(checkpoint)
    existing = (
        [
            v
            for v in client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
            if (v.tags or {}).get(CHECKPOINT_SHA_TAG) == sha
        ]
        if _model_exists(client, name)
        else []
    )
    if existing:
        version = str(existing[0].version)
        log.info("model %s version %s already holds this checkpoint (run %s)", name, version, run_id)
    else:
        with _fluent_store(resolved), mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=SketchsegPyfunc(),
                artifacts={"checkpoint": str(checkpoint)},
                signature=_model_signature(),
                input_example=input_example(),
                pip_requirements=pip_requirements(),
                code_paths=code_paths(),
                registered_model_name=name,
                await_registration_for=60,
            )
        version = str(info.registered_model_version)
    version_tags = {CHECKPOINT_SHA_TAG: sha, **(tags or {})}
    if test_miou is not None:
        version_tags[TEST_MIOU_TAG] = repr(float(test_miou))
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    champion, previous, previous_miou = promote_if_better(client, name, version, test_miou, alias)
    log.info(
        "registered %s version %s (test mIoU %s)%s",
        name,
        version,
        test_miou,
        f"; it is now @{alias}" if champion else f"; @{alias} stays with version {previous} (mIoU {previous_miou})",
    )
    return Registration(
        name=name,
        version=version,
        test_miou=None if test_miou is None else float(test_miou),
        champion=champion,
        previous_champion=previous if previous != version else None,
        previous_miou=previous_miou if previous != version else None,
        model_uri=f"models:/{name}/{version}",
    )


def _model_exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True


def load_champion(name: str = MODEL_NAME, alias: str = CHAMPION, uri: str | None = None):
    """Load ``models:/NAME@ALIAS`` as a pyfunc model."""
    with _fluent_store(tracking_uri(uri)):
        return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
