"""The DVC pipeline's stages (:data:`STAGES`; `sketchseg stage NAME` runs one, :mod:`sketchseg.cli.stage`), each
reading the typed config from params.yaml (and ``-S key=value`` overrides, as ``sketchseg train -S``).

| stage      | reads                           | writes                                                         |
|------------|---------------------------------|----------------------------------------------------------------|
| synth      | data.synth                      | data/synth: the synthetic dataset (scenes + isolated objects)  |
| source     | data.source and its folders     | data/source: the dataset trained and evaluated on (see below)  |
| prepare    | data/source                     | data.prepared: splits.json, categories.json, checks.json       |
| shards     | data/source, data.prepared      | data.shards: webdataset shards per split                       |
| foundation | data/synth (objects + scenes)   | foundation.out: the foundation CLIP (open_clip local-dir)      |
| train      | shards, foundation, params      | train.out, eval.out (runs the Prefect train-flow)              |

The dataset (``data.source``) and the offline foundation's training data are separate: the foundation always learns
from the synthetic generator's data, so a run on real sketches (``data.source: friss``) starts from the same
foundation as the embedded default (same parameters: DVC keeps it, nothing is retrained). The source stage writes
``data/source/SOURCE.json`` naming the dataset's folder for ``synthetic`` (``data/synth``) and ``fscoco`` (the
release, which is not copied, with a fingerprint of its file list: names, sizes, modification times, so DVC reruns
the downstream stages when it changes); for ``friss`` it converts the stroke-3 files into the FSCOCO-Seg layout in
``data/source`` itself (:mod:`sketchseg.data.friss`, with ``friss.json``: what each rule removed). Every later
stage resolves the dataset's folder through :func:`dataset_root`.

Same parameters, same outputs: every stage is seeded from params.yaml and the torch stages run on a fixed number of
CPU threads (``foundation.threads``, ``train.threads``), and no output holds a timing, a host name, a date or an
absolute path. Those go to ``data/timings/STAGE.json`` (an uncached DVC output that no stage depends on).

Interruptions (``kill -9`` included): a stage process dies with the ``dvc repro`` that started it, outputs appear
atomically, and the leftovers of an interrupted attempt are removed when the stage runs again. The train stage keeps
its resumable state in ``data/work/train-KEY`` (not a DVC output, so DVC does not delete it before rerunning the
stage; KEY digests the model and train parameters, the shards and the foundation): training resumes there from its
last epoch checkpoint. The flow calibrates and evaluates a copy of it in its run folder ``data/train-run`` and
publishes that folder's ``train/`` and ``eval/`` as ``train.out`` and ``eval.out``; both folders are removed once the
stage has finished.
"""

from __future__ import annotations

import ast
import datetime
import json
import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sketchseg.config import Config, resolve_foundation
from sketchseg.errors import DataError
from sketchseg.io_utils import atomic_dir, file_sha256, folder_sha1, json_sha1, listing_fingerprint, write_json

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder that holds sketchseg/ and flows/
SYNTH_DIR = Path("data/synth")  # the synthetic generator's dataset: the embedded default and the foundation's data
SOURCE_DIR = Path("data/source")
TIMINGS_DIR = Path("data/timings")  # per-stage timings and host facts, declared in dvc.yaml as uncached outputs
WORK_DIR = Path("data/work")  # the train stage's resumable state, which DVC does not delete before a rerun
RUN_DIR = Path("data/train-run")  # the train stage's run folder: the finished training calibrated and evaluated


def dataset_root(source_dir: Path = SOURCE_DIR) -> Path:
    """The FSCOCO-Seg directory the pipeline reads: the folder the source stage's SOURCE.json names, or the source
    stage's output itself (a converted real set)."""
    marker = source_dir / "SOURCE.json"
    if marker.is_file():
        return Path(json.loads(marker.read_text(encoding="utf-8"))["root"])
    if not (source_dir / "all_classes.json").is_file():
        raise DataError(f"{source_dir}: no dataset; run the source stage first (dvc repro source)")
    return source_dir


def stage_synth(cfg: Config, params: Path, overrides: list[str]) -> None:
    from sketchseg.data.synth import generate

    s = cfg.data.synth
    generate(
        SYNTH_DIR,
        participants=s.participants,
        per_participant=s.per_participant,
        seed=s.seed,
        objects_per_category=s.objects_per_category,
        test_participants=s.test_participants,
        val_per_participant=s.val_per_participant,
        workers=max(1, os.cpu_count() or 1),
        people_variants=s.people_variants,
    )


def _named(root: Path) -> Path:
    """``root`` relative to the working directory when it lies inside it (clones in other folders then write the
    same file), else absolute."""
    root = root.resolve()
    return Path(os.path.relpath(root)) if root.is_relative_to(Path.cwd().resolve()) else root


def _write_marker(source_dir: Path, record: dict[str, Any]) -> None:
    with atomic_dir(source_dir) as tmp:
        write_json(tmp / "SOURCE.json", record, atomic=False)


def stage_source(cfg: Config, params: Path, overrides: list[str]) -> None:
    source_dir = SOURCE_DIR
    if cfg.data.source == "synthetic":
        if not (SYNTH_DIR / "all_classes.json").is_file():
            raise DataError(f"{SYNTH_DIR}: no synthetic dataset; run the synth stage first (dvc repro synth)")
        _write_marker(source_dir, {"source": "synthetic", "root": str(SYNTH_DIR)})
        return
    if cfg.data.source == "friss":
        convert_friss(cfg, source_dir)
        return
    root = Path(cfg.data.fscoco_root).resolve()
    if not root.is_dir():
        raise DataError(
            f"{root}: no FSCOCO-Seg release here (folder not found); unpack the release there or set "
            "data.fscoco_root in params.yaml (docs/data.md)"
        )
    from sketchseg.data.fscoco import read_all_classes

    read_all_classes(root)  # at the root or in the split folders; the error lists every place looked at
    _write_marker(source_dir, {"source": "fscoco", "root": str(_named(root)), "fingerprint": listing_fingerprint(root)})


def convert_friss(cfg: Config, source_dir: Path = SOURCE_DIR) -> None:
    """Convert the FrISS / CBSC folders of ``data.friss_root`` (train, val) and ``data.real_test_root`` (test) into
    the FSCOCO-Seg layout in ``source_dir`` (:func:`sketchseg.data.friss.convert`) and print what each rule removed.
    FrISS's own test split is held out: a test folder that is ``data.friss_root`` is refused."""
    from sketchseg.data.friss import SPLIT_FOLDERS, convert, split_folder

    d = cfg.data
    roots = {"train": Path(d.friss_root), "val": Path(d.friss_root), "test": Path(d.real_test_root)}
    for split, root in roots.items():
        if split_folder(root, split) is None:
            key = "data.real_test_root" if split == "test" else "data.friss_root"
            raise DataError(
                f"{root}: no {split} split (no {' or '.join(SPLIT_FOLDERS[split])} folder); set {key} to a FrISS or "
                "CBSC folder that has one"
            )
    if roots["test"].resolve() == roots["train"].resolve():
        raise DataError(
            f"{roots['test']}: data.real_test_root is data.friss_root, whose test split is held out on purpose; set "
            "data.real_test_root to another set's folder (CBSC's, docs/people.md)"
        )
    with atomic_dir(source_dir) as tmp:
        report = convert({s: _named(r) for s, r in roots.items()}, tmp, class_map=d.class_map,
                         vocabulary=d.vocabulary, on_error=d.on_error)  # fmt: skip
    print("\n".join(report["summary"]))


def stage_prepare(cfg: Config, params: Path, overrides: list[str]) -> None:
    from sketchseg.data.prepare import prepare, summary

    out = Path(cfg.data.prepared)
    checks = prepare(dataset_root(), out, on_error=cfg.data.on_error, max_categories=cfg.data.max_categories)
    print(summary(checks, out))


def stage_shards(cfg: Config, params: Path, overrides: list[str]) -> None:
    from sketchseg.data.shards import build_shards

    d = cfg.data
    summary = build_shards(dataset_root(), d.shards, splits=Path(d.prepared) / "splits.json",
                           samples_per_shard=d.samples_per_shard, min_shards=d.min_shards,
                           max_categories=d.max_categories, seed=d.synth.seed)  # fmt: skip
    print("\n".join([*summary, f"shards written to {d.shards}"]))


def stage_foundation(cfg: Config, params: Path, overrides: list[str]) -> dict[str, Any]:
    from sketchseg.foundation import build_foundation

    report = build_foundation(cfg, data_root=SYNTH_DIR, out=Path(cfg.foundation.out))
    return {**report["timing"], "steps": report.get("training", {}).get("steps")}


def train_work_dir(cfg: Config, foundation: Path | None) -> Path:
    """``data/work/train-KEY``: where the train stage trains. KEY digests everything the training reads (the model and
    train parameters but ``train.out``, the shards, the foundation and an initial checkpoint), so a folder found there
    holds a training this run may continue, and a changed input starts a fresh one."""
    tree = cfg.to_dict()
    init = cfg.train.init_checkpoint
    inputs = {
        "model": tree["model"],
        "train": {k: v for k, v in tree["train"].items() if k != "out"},
        "shards": folder_sha1(cfg.data.shards),  # names and SHA-256 of the folder's files
        "foundation": folder_sha1(foundation),
        "init_checkpoint": file_sha256(init) if init and Path(init).is_file() else init,
    }
    key = json_sha1(inputs)[:16]
    return WORK_DIR / f"train-{key}"


def stage_train(cfg: Config, params: Path, overrides: list[str]) -> dict[str, Any]:
    """The train-flow training in ``data/work/train-KEY`` (resumable), calibrating and evaluating in the run folder
    ``data/train-run`` (started afresh), and publishing that folder's ``train/`` and ``eval/`` as ``train.out`` and
    ``eval.out`` (the stage's outputs) when everything succeeded."""
    from flows.train_flow import train_flow

    work = train_work_dir(cfg, resolve_foundation(cfg, None))
    for stale in WORK_DIR.glob("train-*"):  # interrupted trainings of other inputs: never resumed
        if stale != work:
            shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(RUN_DIR, ignore_errors=True)  # what an interrupted attempt calibrated or evaluated: redone
    train_flow(params=str(params), overrides=list(overrides or []), work=str(work), run_dir=str(RUN_DIR), publish=True)
    for folder in (work, RUN_DIR):
        shutil.rmtree(folder, ignore_errors=True)
    if WORK_DIR.is_dir() and not any(WORK_DIR.iterdir()):
        WORK_DIR.rmdir()
    return {}


@dataclass(frozen=True)
class Stage:
    """One stage of dvc.yaml: what runs it, the folders it writes, and the modules whose code it runs (its code
    dependencies in dvc.yaml must cover every file they import, :func:`code_files`; tests/test_dvc.py checks)."""

    run: Callable[[Config, Path, list[str]], dict[str, Any] | None]
    outputs: Callable[[Config], list[Path]]
    code: tuple[str, ...]


STAGES: dict[str, Stage] = {
    "synth": Stage(stage_synth, lambda cfg: [SYNTH_DIR], ("sketchseg.data.synth",)),
    "source": Stage(stage_source, lambda cfg: [SOURCE_DIR], ("sketchseg.data.friss", "sketchseg.data.fscoco")),
    "prepare": Stage(stage_prepare, lambda cfg: [Path(cfg.data.prepared)], ("sketchseg.data.prepare",)),
    "shards": Stage(stage_shards, lambda cfg: [Path(cfg.data.shards)], ("sketchseg.data.shards",)),
    "foundation": Stage(stage_foundation, lambda cfg: [Path(cfg.foundation.out)], ("sketchseg.foundation",)),
    "train": Stage(stage_train, lambda cfg: [Path(cfg.train.out), Path(cfg.eval.out)], ("flows.train_flow",)),
}


def stage_outputs(cfg: Config, stage: str) -> list[Path]:
    """The output folders of ``stage`` (as dvc.yaml declares them)."""
    return STAGES[stage].outputs(cfg)


def code_files(modules: tuple[str, ...], root: Path = PACKAGE_ROOT) -> list[str]:
    """Every file of sketchseg and flows that ``modules`` import, directly or not, at the top of a module or inside
    a function (what a stage may run), their packages' ``__init__.py`` included: paths relative to ``root``."""
    found: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = _module_file(root, name)
        if path is None or name in found:
            continue
        found[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b first
        todo += _imported(path, name if path.name == "__init__.py" else name.rpartition(".")[0])
    return sorted(str(p.relative_to(root)) for p in found.values())


def _module_file(root: Path, name: str) -> Path | None:
    path = root.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path, package: str) -> list[str]:
    """The sketchseg / flows modules (and ``from m import x`` candidates ``m.x``) that ``path`` imports anywhere but
    under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out: list[str] = []
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        todo += ast.iter_child_nodes(node)
    return [m for m in out if m.split(".")[0] in ("sketchseg", "flows")]


# the command every stage runs through (`sketchseg stage NAME`), without what it imports for the other stages
STAGE_COMMAND = ("sketchseg/cli/__init__.py", "sketchseg/cli/stage.py", "sketchseg/pipeline.py")


def code_deps(stage: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """The code dependencies of ``stage`` as dvc.yaml lists them: :func:`code_files` of its modules and the command
    that runs it (this module and the CLI, not what they import for other stages), with every folder all of whose
    Python files are among them named as the folder."""
    files = set(code_files(STAGES[stage].code, root)) | set(STAGE_COMMAND)
    deps = set(files)
    for folder in sorted({str(Path(f).parent) for f in files}, key=lambda d: -d.count("/")):  # deepest first
        inside = {str(p.relative_to(root)) for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts}
        if inside <= files:
            deps = {d for d in deps if not d.startswith(folder + "/")} | {folder}
    return sorted(deps)


CODE_MARK = "# code: python -m sketchseg.pipeline code-deps --write"  # the code deps of a stage follow this line


def write_code_deps(dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    """Rewrite the code dependencies of every stage in ``dvc_yaml`` (the list items after each stage's
    :data:`CODE_MARK` line) from :func:`code_deps`; returns the stages whose list changed."""
    lines = dvc_yaml.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    stage: str | None = None
    changed = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        name = line.strip().rstrip(":")
        if line.startswith("  ") and not line.startswith("   ") and name in STAGES:
            stage = name
        if line.strip() == CODE_MARK and stage is not None:
            indent = line[: len(line) - len(line.lstrip())]
            old = []
            i += 1
            while i < len(lines) and lines[i].startswith(f"{indent}- ") and lines[i].strip()[2:].startswith(
                ("sketchseg", "flows")
            ):
                old.append(lines[i].strip()[2:])
                i += 1
            new = code_deps(stage)
            out += [f"{indent}- {dep}" for dep in new]
            if old != new:
                changed.append(stage)
            continue
        i += 1
    dvc_yaml.write_text("\n".join(out) + "\n", encoding="utf-8")
    return changed


def clear_leftovers(outputs: list[Path]) -> None:
    """Remove what an interrupted earlier attempt left of its atomic writes (:mod:`sketchseg.io_utils`): the temporary
    siblings of ``outputs`` (``.NAME.tmp-*``, ``.NAME.old-*``) and the temporary files inside those that exist."""
    stale: list[Path] = []
    for out in outputs:
        for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*"):
            stale += out.parent.glob(pattern)
        if out.is_dir():
            stale += out.glob(".*.tmp-*")
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def host_facts() -> dict[str, Any]:
    """What a stage's time depends on besides its parameters."""
    from sketchseg.provenance import cpu_model, provenance

    facts: dict[str, Any] = {"host": platform.node(), "cpus": os.cpu_count(), "cpu": cpu_model(),
                             "python": platform.python_version()}  # fmt: skip
    torch = sys.modules.get("torch")
    if torch is not None:
        facts.update(**provenance(), cuda=torch.cuda.is_available())
    return facts


def write_timing(stage: str, started: float, seconds: float, details: dict[str, Any] | None) -> Path:
    """``data/timings/STAGE.json``: the stage's wall-clock time, when it ran, on what, and its own details."""
    record = {
        "stage": stage,
        "seconds": round(seconds, 1),
        "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="seconds"),
        **host_facts(),
        **(details or {}),
    }
    return write_json(TIMINGS_DIR / f"{stage}.json", record, atomic=False)


def timings_line(folder: Path = TIMINGS_DIR) -> str:
    """Each stage's time from ``data/timings`` (of its last run), in pipeline order, as one line."""
    from sketchseg.progress import duration

    parts = []
    for stage in STAGES:
        path = folder / f"{stage}.json"
        if path.is_file():
            record = json.loads(path.read_text(encoding="utf-8"))
            steps = f", {record['steps']} steps" if record.get("steps") else ""
            parts.append(f"{stage} {duration(record['seconds'])}{steps}")
    return "stage times (data/timings/): " + ("; ".join(parts) if parts else "none recorded")


def summary(eval_out: Path = Path("data/eval")) -> str:
    """What `make pipeline` ends with: the results table and the stage times."""
    table = eval_out / "table.md"
    missing = f"(no {table}: the train stage has not run)"
    body = table.read_text(encoding="utf-8").rstrip() if table.is_file() else missing
    return f"\n== results ({table}) ==\n\n{body}\n\n{timings_line()}"


if __name__ == "__main__":
    # `python -m sketchseg.pipeline`: the summary `make pipeline` prints; `... code-deps --write`: dvc.yaml's code deps
    if sys.argv[1:] == ["code-deps", "--write"]:
        stages = write_code_deps()
        print(f"dvc.yaml: code deps rewritten ({', '.join(stages) or 'no change'})")
    else:
        print(summary())
