"""`sketchseg evaluate`: baselines and both checkpoints on val and test, τ calibration, metrics and plots; or, with
``--real``, the same models on people's stroke-3 scene sketches (FrISS, CBSC) beside the floors."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from sketchseg.errors import CheckpointError, ConfigError

HELP = "evaluate clip, clip_surgery and the trained checkpoints (optimal, last) on val and test, or on real sketches"
OUT = Path("outputs/evaluate")
REAL_OUT = Path("outputs/evaluate-real")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    trained = p.add_mutually_exclusive_group()
    trained.add_argument("--train-dir", type=Path, default=None,
                         help="training output folder, only read (default: train.out); its models with the "
                              "calibrated τ are written to OUT/models/, the calibration to OUT/calibration.json")
    trained.add_argument("--checkpoint", type=Path, default=None,
                         help="evaluate this checkpoint (sketchseg .pt or the authors' .pth) as both optimal and last "
                              "instead of a training's; written as a sketchseg checkpoint to OUT/checkpoint/models/, "
                              "where its τ is calibrated")  # fmt: skip
    p.add_argument("--foundation", type=Path, default=None, help="foundation CLIP folder for the baselines")
    p.add_argument("--shards", type=Path, default=None, help="shards folder (default: data.shards)")
    p.add_argument("--prepared", type=Path, default=None, help="prepare-stage folder (default: data.prepared)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder, replaced as a whole when the evaluation is done (default: {OUT}; with "
                        f"--real: {REAL_OUT}); --out data/eval rewrites the pipeline's DVC output")  # fmt: skip
    p.add_argument("--real", action="append", default=[], metavar="NAME=FOLDER:SPLIT",
                   help="score on people's stroke-3 scene sketches laid out as FrISS or CBSC instead of the shards, "
                        "e.g. friss_val=data/friss:val (repeatable); classes renamed by data.class_map and kept by "
                        "data.vocabulary (e.g. -S data.class_map=people_to_synthetic -S data.vocabulary=synthetic: "
                        "the embedded model's 24 words); no calibration, nothing written but OUT/real.json and "
                        "OUT/real_table.md")  # fmt: skip


def stage_checkpoint(checkpoint: Path, folder: Path) -> Path:
    """A training-like folder whose ``models/optimal.pt`` and ``models/last.pt`` are ``checkpoint`` (converted when
    it is the authors' file), for :func:`~sketchseg.eval.report.run_report`; returns ``folder``."""
    from sketchseg.model.checkpoint import load_model, save_checkpoint

    model = load_model(checkpoint)
    optimal = save_checkpoint(model, folder / "models" / "optimal.pt", meta=getattr(model, "checkpoint_meta", {}))
    shutil.copyfile(optimal, folder / "models" / "last.pt")
    return folder


def parse_real(items: list[str]) -> dict[str, tuple[Path, str]]:
    """``NAME=FOLDER:SPLIT`` flags -> {name: (folder, split)}."""
    out: dict[str, tuple[Path, str]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        folder, colon, split = rest.rpartition(":")
        if not (sep and colon and name and folder) or split not in ("train", "val", "test"):
            raise ConfigError(f"--real {item!r}: expected NAME=FOLDER:SPLIT with SPLIT train, val or test, e.g. "
                              "friss_val=data/friss:val")  # fmt: skip
        out[name] = (Path(folder), split)
    return out


def run_real(args: argparse.Namespace) -> int:
    """``--real``: the floors, the baselines on the foundation and the trained checkpoints on each named set."""
    import torch

    from sketchseg.config import load_config, resolve_foundation
    from sketchseg.data.friss import read_set
    from sketchseg.eval.evaluate import samples_from_set
    from sketchseg.eval.report import baseline_model, evaluate_sets, format_table
    from sketchseg.io_utils import write_json
    from sketchseg.model.checkpoint import load_model

    cfg = load_config(args.params, args.set)
    torch.set_num_threads(cfg.train.threads)
    sets = parse_real(args.real)
    samples = {}
    for name, (folder, split) in sets.items():
        real = read_set({split: folder}, class_map=cfg.data.class_map, vocabulary=cfg.data.vocabulary,
                        on_error=cfg.data.on_error)  # fmt: skip
        print(real.reports[split].line().replace(f"{split}:", f"{name} ({folder}, {split}):", 1))
        samples[name] = samples_from_set(real, split, cfg.eval.max_sketches)
    foundation = resolve_foundation(cfg, args.foundation)
    models = {name: baseline_model(name, foundation, cfg) for name in cfg.eval.baselines}
    if args.checkpoint is not None:
        models["checkpoint"] = load_model(args.checkpoint)
    else:
        train_dir = args.train_dir or Path(cfg.train.out)
        for name in ("optimal", "last"):
            if (train_dir / "models" / f"{name}.pt").is_file():
                models[name] = load_model(train_dir / "models" / f"{name}.pt")
    figures = evaluate_sets(models, samples, seed=cfg.train.seed, progress=True)
    out = args.out or REAL_OUT
    table = format_table(figures, splits=list(samples))
    write_json(out / "real.json", {"sets": {n: {"folder": str(f), "split": s} for n, (f, s) in sets.items()},
                                   "class_map": cfg.data.class_map, "vocabulary": cfg.data.vocabulary,
                                   "figures": figures})  # fmt: skip
    (out / "real_table.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"\nwritten: {out / 'real.json'}, {out / 'real_table.md'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """The normal mode: τ calibrated on the copies of the trained models written to OUT, the report into OUT. OUT is
    filled in a temporary sibling (starting from what it held) that replaces it at the end, so an interrupted
    evaluation leaves it as it was; the training folder is only read."""
    from sketchseg.config import load_config
    from sketchseg.eval.report import calibrate, format_table, run_report
    from sketchseg.io_utils import atomic_dir

    if args.real:
        return run_real(args)
    cfg = load_config(args.params, args.set)
    out = Path(args.out or OUT)
    train_dir = Path(args.train_dir or cfg.train.out)
    shards = args.shards or cfg.data.shards
    if args.checkpoint is None:
        if not (train_dir / "models" / "optimal.pt").is_file():
            raise CheckpointError(f"{train_dir / 'models' / 'optimal.pt'}: missing; run the training first (dvc "
                                  "repro, sketchseg train), or name a training folder (--train-dir) or a checkpoint "
                                  "(--checkpoint)")  # fmt: skip
        a, b = train_dir.resolve(), out.resolve()
        if a.is_relative_to(b) or b.is_relative_to(a):
            raise ConfigError(f"--out {out}: overlaps the training folder {train_dir}, which evaluation only reads; "
                              "pick an output folder outside it (default: outputs/evaluate)")  # fmt: skip
    with atomic_dir(out) as tmp:
        if out.is_dir():
            shutil.copytree(out, tmp, dirs_exist_ok=True)
        if args.checkpoint is not None:  # a folder of OUT's own: calibrated where it was staged
            train_dir = calibrated = stage_checkpoint(args.checkpoint, tmp / "checkpoint")
        else:
            calibrated = tmp
        calibration = calibrate(cfg, train_dir=train_dir, shards=shards, out=calibrated)
        report = run_report(
            cfg,
            train_dir=calibrated,
            out=tmp,
            shards=shards,
            foundation=args.foundation,
            prepared=args.prepared or cfg.data.prepared,
            calibration=calibration,
        )
    print(format_table(report["figures"]))
    models = out / ("checkpoint" if args.checkpoint is not None else "") / "models"
    print(f"\nwritten: {out} (report.json, metrics.json, table.md, plots); τ {calibration['tau']:.2f} calibrated into "
          f"{models / 'optimal.pt'} and {models / 'last.pt'}")  # fmt: skip
    return 0
