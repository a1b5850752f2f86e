"""`sketchseg checkpoint convert IN OUT`: write any checkpoint sketchseg accepts (the authors' released
``sketch_seg_best_miou.pth`` above all) as a sketchseg checkpoint, which then loads without conversion wherever a
checkpoint is accepted (``segment --checkpoint``, ``Segmenter.from_checkpoint``, ``train --init-checkpoint``, ...)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchseg.errors import InputError

HELP = "convert a checkpoint (e.g. the authors' sketch_seg_best_miou.pth) into a sketchseg checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, metavar="IN", help="the authors' .pth, or a sketchseg checkpoint")
    p.add_argument("target", type=Path, metavar="OUT", help="sketchseg checkpoint to write (e.g. authors.pt)")


def run(args: argparse.Namespace) -> int:
    from sketchseg.model.checkpoint import load_model, save_checkpoint

    if args.target.exists() and args.target.is_dir():
        raise InputError(f"{args.target}: is a directory; give the checkpoint file to write")
    if args.target.resolve() == args.source.resolve():
        raise InputError(f"{args.target}: the same file as the input; write the converted checkpoint elsewhere")
    model = load_model(args.source)
    save_checkpoint(model, args.target, meta=getattr(model, "checkpoint_meta", {}))
    print(f"weights: {model.weights}")
    print(f"wrote {args.target}")
    return 0
