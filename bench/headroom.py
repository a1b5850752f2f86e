"""Fine-tuning headroom of a foundation (issue 4, target "ours >= clip_surgery + 15 mIoU"). Prints JSON.

On the test split, scored by the evaluation protocol (test mIoU / Acc@P, %):
- ``grid_oracle``: each patch of the model's grid predicts its ground-truth label fractions (the grid's ceiling);
- ``clip_surgery``: the foundation zero-shot with v-v attention (the baseline of the target);
- ``probe_<mode>``: the trainable parameters of fine-tuning mode <mode> fitted to per-patch ground-truth labels
  (supervision far stronger than captions; :mod:`sketchseg.eval.headroom`): of ``--probe-scenes`` new labelled scenes
  drawn by the generator in the training participants' styles (synthetic data; default 1500), or with
  ``--probe-scenes 0`` of the validation sketches. ``--probe-test-half`` adds the second half of the test sketches (the
  test participants' styles), and every row is then scored on the first half only;
- ``ours_optimal``: the trained model of ``--train-dir`` when it exists.

With ``--real FRISS CBSC`` (folders of people's sketches laid out as FrISS and CBSC) the probes are fitted to the
stroke labels of FrISS train and every row is scored on FrISS val and CBSC test instead, restricted to the
foundation's 24 words (``people_to_synthetic``), with the model parameters of params.yaml (``patch_shifts``,
``labels``): what any fine-tuning of each mode could reach on people's sketches.

Usage: python bench/headroom.py [--params params.yaml] [--foundation data/foundation] [--shards data/shards]
       [--source data/source] [--probe-scenes 1500] [--train-dir data/train] [--modes ln+vpt full] [--epochs 10]
       [--test-max 0] [--probe-test-half] [--threads 2] [--real FRISS CBSC]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from sketchseg.config import load_config, model_config_for
from sketchseg.eval.evaluate import evaluate_model, samples_from_shards
from sketchseg.eval.headroom import ProbeConfig, fit_label_probe, grid_oracle, labelled_training_scenes
from sketchseg.eval.report import baseline_model
from sketchseg.model.checkpoint import load_model
from sketchseg.model.network import SketchSegModel

# LayerNorm + prompt parameters need a larger step than the whole tower (full: patch filters kept zero-mean, as in
# training; sketchseg.model.finetune).
PROBE_LR = {"ln+vpt": 1e-2, "ln": 1e-2, "vpt": 1e-2, "full": 1e-4}


def headline(summary: dict) -> dict[str, float]:
    return {"miou": round(100 * summary["miou"], 2), "acc_p": round(100 * summary["acc_p"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--foundation", default="data/foundation")
    ap.add_argument("--shards", default="data/shards")
    ap.add_argument("--source", default="data/source", help="the synthetic dataset (its synth.json)")
    ap.add_argument("--probe-scenes", type=int, default=1500, help="new labelled training scenes (0 = val sketches)")
    ap.add_argument("--train-dir", default="data/train")
    ap.add_argument("--modes", nargs="*", default=["ln+vpt", "full"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--test-max", type=int, default=0, help="test sketches scored (0 = all)")
    ap.add_argument("--probe-test-half", action="store_true", help="fit probes on val + half of test too")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", nargs=2, metavar=("FRISS", "CBSC"), help="fit on FrISS train, score FrISS val, CBSC test")
    args = ap.parse_args()
    if args.real:
        real_headroom(args)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the prompts are initialised at random
    cfg = load_config(args.params)
    if args.probe_scenes:
        fit_on = labelled_training_scenes(args.source, args.probe_scenes)
    else:
        fit_on = samples_from_shards(args.shards, "val")
    test = samples_from_shards(args.shards, "test", args.test_max)
    if args.probe_test_half:
        half = len(test) // 2
        fit_on, test = fit_on + test[half:], test[:half]
    start = time.time()
    out: dict = {
        "foundation": args.foundation,
        "probe_fit": f"{args.probe_scenes} generated training scenes" if args.probe_scenes else "val sketches",
        "probe_sketches": len(fit_on),
        "test_sketches": len(test),
    }

    surgery = baseline_model("clip_surgery", args.foundation, cfg)
    out["grid"] = list(surgery.encoder.grid)
    out["grid_oracle"] = headline(grid_oracle(test, surgery.encoder.grid, cfg.model.upsample))
    out["clip_surgery"] = headline(evaluate_model(surgery, test, sweep=False).summary)
    for mode in args.modes:
        model_cfg = dataclasses.replace(model_config_for(cfg, args.foundation), finetune=mode, prompt_dropout=0.0)
        model = SketchSegModel(model_cfg)
        probe = ProbeConfig(epochs=args.epochs, lr=PROBE_LR.get(mode, 1e-3))
        before = headline(evaluate_model(model, test, sweep=False).summary)
        losses = fit_label_probe(model, fit_on, probe, progress=True)
        after = headline(evaluate_model(model, test, sweep=False).summary)
        out[f"probe_{mode}"] = {
            "lr": probe.lr,
            "epochs": probe.epochs,
            "loss_first_epoch": round(losses[0], 4),
            "loss_last_epoch": round(losses[-1], 4),
            "before": before,
            "after": after,
        }
    optimal = Path(args.train_dir) / "models" / "optimal.pt"
    if optimal.is_file():
        out["ours_optimal"] = headline(evaluate_model(load_model(optimal), test, sweep=False).summary)
    out["target_miou"] = round(out["clip_surgery"]["miou"] + 15.0, 2)
    out["seconds"] = round(time.time() - start, 1)
    print(json.dumps(out, indent=2))


def real_headroom(args: argparse.Namespace) -> None:
    """``--real``: probes fitted to FrISS train's stroke labels, every row scored on FrISS val and CBSC test."""
    from sketchseg.data.friss import read_set
    from sketchseg.eval.evaluate import samples_from_set

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_config(args.params)
    words = {"class_map": "people_to_synthetic", "vocabulary": "synthetic"}
    friss = read_set({"train": args.real[0], "val": args.real[0]}, **words)
    cbsc = read_set({"test": args.real[1]}, **words)
    fit_on = samples_from_set(friss, "train")
    sets = {"friss_val": samples_from_set(friss, "val"), "cbsc_test": samples_from_set(cbsc, "test")}
    start = time.time()
    surgery = baseline_model("clip_surgery", args.foundation, cfg)
    out: dict = {
        "foundation": args.foundation,
        "probe_fit": "FrISS train stroke labels",
        "probe_sketches": len(fit_on),
        "patch_shifts": cfg.model.patch_shifts,
        "labels": cfg.model.labels,
        "grid": list(surgery.encoder.grid),
    }
    for name, samples in sets.items():
        out[name] = {"sketches": len(samples), "grid_oracle": headline(grid_oracle(samples, surgery.encoder.grid,
                                                                                  cfg.model.upsample)),
                     "clip_surgery": headline(evaluate_model(surgery, samples, sweep=False).summary)}  # fmt: skip
    for mode in args.modes:
        model_cfg = dataclasses.replace(model_config_for(cfg, args.foundation), finetune=mode, prompt_dropout=0.0)
        model = SketchSegModel(model_cfg)
        probe = ProbeConfig(epochs=args.epochs, lr=PROBE_LR.get(mode, 1e-3))
        losses = fit_label_probe(model, fit_on, probe, progress=True)
        for name, samples in sets.items():
            out[name][f"probe_{mode}"] = headline(evaluate_model(model, samples, sweep=False).summary)
        out[f"probe_{mode}_loss"] = [round(losses[0], 4), round(losses[-1], 4)]
    out["seconds"] = round(time.time() - start, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
