"""webdataset shards of one split (SPEC §6.3): writer, reader, DataLoader, and `sketchseg data shards`.

Layout in ``out_dir``: ``<split>-000000.tar``, ``<split>-000001.tar``, ... plus ``<split>.json``, the index
(shard names, sample counts, fields). The index is the commit marker of a shard set: it is written last,
and readers never look at a shard the index does not name.

One sample per sketch (tar members ``<id>.<field>``):

=====================  ========================================================================
``__key__``            the sketch id
``png``                the sketch, 8-bit grayscale PNG (the original bytes when the file already
                       is one; otherwise re-encoded: RGB/JPEG -> "L", transparency over white)
``caption.txt``        the caption, UTF-8
``categories.json``    :func:`sketchseg.data.captions.parse_categories` of the caption (list of str; the
                       command parses with the release's ``all_classes.json`` names known first)
``participant.txt``    the participant id, UTF-8 (empty when unknown)
``vector.npy``         annotated sketches only (val/test): the raw ``(n, 3)`` vector array, ``np.save``
``labels.json``        annotated sketches only: the per-stroke category names (list of str)
=====================  ========================================================================

Reading gives dicts ``{"id", "image", "caption", "categories", "participant", "vector", "labels"}`` with
``image`` a ``np.uint8`` array ``[H, W]`` (grayscale, never RGB), ``vector``/``labels`` ``None`` for
unannotated sketches, and ``participant`` ``""`` when it was unknown.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
import random
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from sketchseg.data.records import SPLITS, SketchRecord
from sketchseg.errors import DataError, InputError
from sketchseg.io_utils import atomic_dir, write_json

if TYPE_CHECKING:
    import torch.utils.data

    from sketchseg.data.captions import CaptionParser

log = logging.getLogger(__name__)

INDEX_VERSION = 1
IMAGE_FIELD = "png"
TEXT_FIELDS = ("caption.txt", "categories.json", "participant.txt")
ANNOTATION_FIELDS = ("vector.npy", "labels.json")
ANNOTATED_SPLITS = ("val", "test")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")  # no ".": webdataset splits key and field at the first dot
_MAX_KEY_LENGTH = 80  # USTAR member names: key + "." + longest field name <= 100 characters

Sample = dict[str, Any]


def shard_name(split: str, index: int) -> str:
    """File name of shard ``index`` of ``split``: ``<split>-000000.tar``."""
    return f"{split}-{index:06d}.tar"


def index_path(out_dir: str | os.PathLike[str], split: str) -> Path:
    """Path of the index of a split's shard set: ``out_dir/<split>.json``."""
    return Path(out_dir) / f"{split}.json"


def _shard_pattern(split: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(split)}-\d{{6}}\.tar$")


# ---------------------------------------------------------------------------------------------------------
# Encoding


def _to_gray(image: Image.Image) -> Image.Image:
    """An 8-bit grayscale ("L") copy of ``image``; transparent pixels become white (paper background)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)  # [H, W]
        if pixels.max(initial=0) > 255:  # 16-bit range
            pixels = pixels / 257.0
        return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="L")
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


def grayscale_png_bytes(path: str | os.PathLike[str]) -> bytes:
    """The sketch at ``path`` as 8-bit grayscale PNG bytes: the file itself when it already is one,
    otherwise a re-encoding (RGB, palette, JPEG, 16-bit ... -> "L"). Raises DataError for unreadable files."""
    path = Path(path)
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format == "PNG" and image.mode == "L":
                return data
            gray = _to_gray(image)
    except FileNotFoundError:
        raise DataError(f"{path}: sketch image not found; check the dataset root or regenerate the data") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: unreadable sketch image ({exc}); replace or remove this sketch") from None
    buffer = io.BytesIO()
    gray.save(buffer, format="PNG")
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray, record: SketchRecord) -> bytes:
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.asarray(array), allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{record.image_path}: vector of sketch {record.id!r} cannot be stored ({exc})") from None
    return buffer.getvalue()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def encode_sample(record: SketchRecord, categories: Sequence[str]) -> Sample:
    """The tar members of one sketch (field -> bytes, plus ``__key__``)."""
    sample: Sample = {
        "__key__": record.id,
        IMAGE_FIELD: grayscale_png_bytes(record.image_path),
        "caption.txt": record.caption.encode("utf-8"),
        "categories.json": _json_bytes(list(categories)),
        "participant.txt": (record.participant or "").encode("utf-8"),
    }
    if record.vector is not None:
        sample["vector.npy"] = _npy_bytes(record.vector, record)
    if record.labels is not None:
        sample["labels.json"] = _json_bytes([str(label) for label in record.labels])
    return sample


# ---------------------------------------------------------------------------------------------------------
# Writing


def _check_records(records: Sequence[SketchRecord], split: str) -> None:
    seen: set[str] = set()
    for record in records:
        where = f"sketch {record.id!r} ({record.image_path})"
        if not isinstance(record.id, str) or not _KEY.match(record.id) or len(record.id) > _MAX_KEY_LENGTH:
            raise DataError(
                f"{where}: id is not usable as a shard key (letters, digits, '_' and '-', at most "
                f"{_MAX_KEY_LENGTH} characters, no '.'); rename the sketch files"
            )
        if record.id in seen:
            raise DataError(f"{where}: id appears twice in split {split!r}; sketch ids must be unique")
        seen.add(record.id)
        if not isinstance(record.caption, str):
            raise DataError(f"{where}: caption is {type(record.caption).__name__}, not text")
        if split in ANNOTATED_SPLITS and not record.annotated:
            raise DataError(
                f"{where}: split {split!r} needs the vector strokes and per-stroke labels "
                "(vector_sketches/<id>.npy, classes/<id>.json); add them or put the sketch in train"
            )


def _shard_count(n: int, num_shards: int | None, min_shards: int, samples_per_shard: int) -> int:
    if num_shards is None:
        count = max(min_shards, math.ceil(n / samples_per_shard))
    else:
        count = num_shards
    if count > n:
        log.warning("only %d samples: writing %d shards instead of %d (one sample per shard)", n, n, count)
        count = n
    return count


def write_shards(
    records: Iterable[SketchRecord],
    out_dir: str | os.PathLike[str],
    *,
    split: str,
    num_shards: int | None = None,
    min_shards: int = 2,
    samples_per_shard: int = 1000,
    max_categories: int | None = 3,
    seed: int = 0,
    progress: bool = True,
    parser: CaptionParser | None = None,
) -> dict:
    """Write ``records`` as the shard set of ``split`` in ``out_dir`` and return its index.

    ``num_shards`` defaults to ``max(min_shards, ceil(n / samples_per_shard))`` (so that up to
    ``min_shards`` DataLoader workers all get a shard), never more than ``n``. Records are permuted with
    ``random.Random(seed)`` and dealt in contiguous runs, so shard sizes differ by at most one and every
    shard mixes participants; the same input and seed give byte-identical shards. Categories are
    ``parse_categories(caption, max_categories=max_categories, parser=parser)`` (default parser if None).

    The set is written into a temporary directory first; on any error nothing in ``out_dir`` changes.
    On success the shards are moved into place, shards of an older set of this split that the new index
    does not name are deleted, and the index is written last. Raises DataError on bad records (empty
    split, duplicate or unusable ids, unreadable images, val/test sketches without annotations).
    """
    from sketchseg.data import captions

    if not _SPLIT_NAME.match(split):
        raise ValueError(f"split name {split!r} must be letters, digits and '_' only")
    if min_shards < 1 or samples_per_shard < 1 or (num_shards is not None and num_shards < 1):
        raise ValueError(
            f"need min_shards >= 1, samples_per_shard >= 1 and num_shards >= 1 (or None); got "
            f"{min_shards=}, {samples_per_shard=}, {num_shards=}"
        )
    out_dir = Path(out_dir)
    records = list(records)
    if not records:
        raise DataError(f"split {split!r} has no sketches: nothing to write to {out_dir}; check the dataset root")
    _check_records(records, split)
    n = len(records)
    count = _shard_count(n, num_shards, min_shards, samples_per_shard)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    runs = [order[i * n // count : (i + 1) * n // count] for i in range(count)]
    names = [shard_name(split, i) for i in range(count)]
    fields = [IMAGE_FIELD, *TEXT_FIELDS]
    if any(r.vector is not None for r in records):
        fields.append("vector.npy")
    if any(r.labels is not None for r in records):
        fields.append("labels.json")
    index = {
        "format": "sketchseg-shards",
        "version": INDEX_VERSION,
        "split": split,
        "num_samples": n,
        "shards": names,
        "samples_per_shard": [len(run) for run in runs],
        "fields": fields,
        "max_categories": max_categories,
        "caption_parser": (parser or captions.default_parser()).backend,
        "seed": seed,
    }

    import webdataset as wds

    from sketchseg.progress import progress as progress_bar

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".{split}.staging"
    bar = progress_bar(total=n, desc=f"shards {split}", unit="sketch", enabled=progress, leave=False)
    with atomic_dir(staging) as tmp, bar:
        for name, run in zip(names, runs, strict=True):
            with open(tmp / name, "wb") as stream, wds.TarWriter(stream, encoder=False, mtime=0.0) as writer:
                for i in run:
                    record = records[i]
                    categories = captions.parse_categories(record.caption, max_categories=max_categories, parser=parser)
                    writer.write(encode_sample(record, categories))
                    bar.update(1)
        write_json(tmp / index_path(tmp, split).name, index, atomic=False)
    _commit(staging, out_dir, split, names)
    log.info("wrote %d %s samples in %d shards to %s", n, split, count, out_dir)
    return index


def _commit(staging: Path, out_dir: Path, split: str, names: list[str]) -> None:
    """Move a complete staged set into ``out_dir``: old index out first, shards in, stale shards out,
    new index in last (an interruption leaves no index, i.e. no set, never a mixed one)."""
    target_index = index_path(out_dir, split)
    target_index.unlink(missing_ok=True)
    for name in names:
        os.replace(staging / name, out_dir / name)
    keep = set(names)
    pattern = _shard_pattern(split)
    for path in sorted(out_dir.iterdir()):
        if pattern.match(path.name) and path.name not in keep:
            path.unlink()
    os.replace(staging / target_index.name, target_index)
    shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Reading


def read_index(out_dir: str | os.PathLike[str], split: str) -> dict:
    """The index of ``split``'s shard set in ``out_dir`` (DataError when missing or malformed)."""
    path = index_path(out_dir, split)
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: no shard index for split {split!r}; write the shards with `sketchseg data shards` "
            "(or `dvc repro shards`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable shard index ({exc}); rewrite the shards") from None
    if not isinstance(index, dict) or not isinstance(index.get("shards"), list) or not index["shards"]:
        raise DataError(f"{path}: shard index names no shards; rewrite the shards with `sketchseg data shards`")
    return index


def shard_urls(out_dir: str | os.PathLike[str], split: str) -> list[str]:
    """Paths of ``split``'s shards, in index order (DataError when the index or a shard is missing)."""
    out_dir = Path(out_dir)
    urls = []
    for name in read_index(out_dir, split)["shards"]:
        path = out_dir / str(name)
        if Path(name).name != name or not path.is_file():
            raise DataError(f"{path}: shard named by {index_path(out_dir, split)} is missing; rewrite the shards")
        urls.append(str(path))
    return urls


def decode_gray(png: bytes) -> np.ndarray:
    """PNG bytes -> ``np.uint8`` array ``[H, W]`` (grayscale whatever the stored mode)."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        gray = image if image.mode == "L" else _to_gray(image)
        return np.array(gray, dtype=np.uint8)  # [H, W], a writable copy


def decode_sample(sample: Sample, decode: bool = True) -> dict[str, Any]:
    """A raw webdataset sample -> ``{"id", "image", "caption", "categories", "participant", "vector",
    "labels"}``; ``image`` stays PNG bytes when ``decode`` is False."""
    key = sample.get("__key__")
    try:
        png = sample[IMAGE_FIELD]
        vector = sample.get("vector.npy")
        labels = sample.get("labels.json")
        return {
            "id": key,
            "image": decode_gray(png) if decode else bytes(png),
            "caption": sample["caption.txt"].decode("utf-8"),
            "categories": json.loads(sample["categories.json"]),
            "participant": sample.get("participant.txt", b"").decode("utf-8"),
            "vector": None if vector is None else np.load(io.BytesIO(vector), allow_pickle=False),
            "labels": None if labels is None else json.loads(labels),
        }
    except (KeyError, ValueError, OSError, SyntaxError) as exc:
        raise DataError(
            f"{sample.get('__url__', '?')}: sample {key!r} is malformed ({type(exc).__name__}: {exc}); "
            "rewrite the shards with `sketchseg data shards`"
        ) from None


def _decode_stream(
    source: Iterable[Sample],
    decode: bool,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> Iterator[dict[str, Any]]:
    """Pipeline stage: raw samples -> decoded dicts (a plain generator, so webdataset's ``map`` does not
    put ``__key__`` back into them)."""
    for sample in source:
        decoded = decode_sample(sample, decode=decode)
        yield decoded if transform is None else transform(decoded)


def make_dataset(
    out_dir: str | os.PathLike[str],
    split: str,
    *,
    shuffle: bool,
    seed: int,
    decode: bool = True,
    shuffle_buffer: int = 1000,
    epoch: int = 0,
    split_by_node: bool = False,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
):
    """A webdataset pipeline over ``split``'s shards yielding the dicts of :func:`decode_sample`.

    ``shuffle``: shards (``shardshuffle``) and samples (a buffer of ``shuffle_buffer``) are shuffled,
    deterministically from ``seed`` and the epoch; the first pass is epoch ``epoch`` and every further
    pass of the same pipeline object the next one. Without ``shuffle`` the order is the index order
    (with DataLoader workers: worker ``w`` reads shards ``w, w + W, ...``, batches interleave).
    ``split_by_node``: under torch.distributed each rank reads only its share of the shards (training; the
    ranks' sample counts then differ by up to one shard's worth, so bound the steps per epoch);
    otherwise every process reads every shard. ``transform`` is applied to each decoded sample.
    """
    import webdataset as wds
    from webdataset import filters

    urls = shard_urls(out_dir, split)
    dataset = wds.WebDataset(
        urls,
        shardshuffle=len(urls) if shuffle else False,
        detshuffle=True,
        seed=seed,
        nodesplitter=wds.split_by_node if split_by_node else None,
    )
    if shuffle:
        dataset = dataset.compose(filters.detshuffle(shuffle_buffer, initial=min(100, shuffle_buffer), seed=seed))
    for stage in dataset.pipeline:
        if isinstance(stage, filters.detshuffle):
            stage.epoch = epoch - 1  # run() increments before use
    return dataset.compose(functools.partial(_decode_stream, decode=decode, transform=transform))


def collate_samples(samples: list[dict[str, Any]], stack: Sequence[str] = ("image",)) -> dict[str, Any]:
    """Batch a list of sample dicts into a dict of lists; the fields in ``stack`` become one tensor
    ``[B, ...]`` when all their arrays have the same shape (else they stay lists). Variable-size fields
    (vector, labels, categories, ...) are always lists."""
    import torch

    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        arrays = all(isinstance(v, np.ndarray | torch.Tensor) for v in values)
        if key in stack and arrays and len({tuple(v.shape) for v in values}) == 1:
            batch[key] = torch.stack([torch.as_tensor(v) for v in values])
        else:
            batch[key] = values
    return batch


def make_loader(
    out_dir: str | os.PathLike[str],
    split: str,
    batch_size: int,
    num_workers: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    decode: bool = True,
    shuffle_buffer: int = 1000,
    epoch: int = 0,
    split_by_node: bool = False,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    stack: Sequence[str] = ("image",),
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A torch DataLoader over :func:`make_dataset` batching with :func:`collate_samples`.

    ``num_workers`` is capped at the number of shards (a worker without a shard would fail); with
    workers, they are persistent so that each epoch (each ``iter(loader)``) reshuffles when ``shuffle``.
    Every sample is yielded exactly once per epoch (the last batch of each worker may be smaller).
    """
    import torch.utils.data

    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size=}, {num_workers=}")
    shards = len(shard_urls(out_dir, split))
    if split_by_node:
        from webdataset.utils import pytorch_worker_info

        rank, world_size, _, _ = pytorch_worker_info()
        shards = len(range(rank, shards, world_size))  # this rank's share
    if num_workers > shards:
        log.warning("%s has %d shards: using %d DataLoader workers instead of %d", split, shards, shards, num_workers)
        num_workers = shards
    dataset = make_dataset(
        out_dir,
        split,
        shuffle=shuffle,
        seed=seed,
        decode=decode,
        shuffle_buffer=shuffle_buffer,
        epoch=epoch,
        split_by_node=split_by_node,
        transform=transform,
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=functools.partial(collate_samples, stack=tuple(stack)),
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )


# ---------------------------------------------------------------------------------------------------------
# Writing a dataset's shards (sketchseg data shards)

_OUR_FILE = re.compile(r"^[A-Za-z0-9_]+(-\d{6}\.tar|\.json)$")


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a directory, but it is a file; choose another path")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not _OUR_FILE.match(p.name) and not p.name.startswith("."))
        if foreign:
            raise InputError(
                f"{out}: refusing to replace a directory holding non-shard files ({', '.join(foreign[:3])}); "
                "choose an empty or shards-only --out directory"
            )


def _select(records: list[SketchRecord], wanted: list[str], split: str, splits_file: Path) -> list[SketchRecord]:
    """The records listed for ``split`` in the splits file (reader order); DataError for unknown ids."""
    wanted_set = set(wanted)
    chosen = [r for r in records if r.id in wanted_set]
    found = {r.id for r in chosen}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise DataError(
            f"{splits_file}: {len(missing)} {split} ids are not in the dataset's {split} split "
            f"(e.g. {', '.join(missing[:3])}); regenerate the splits file for this dataset"
        )
    return chosen


def build_shards(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    splits: str | os.PathLike[str] | None = None,
    samples_per_shard: int = 500,
    min_shards: int = 2,
    max_categories: int = 3,
    seed: int = 0,
) -> list[str]:
    """Write the shards of every split of the FSCOCO-Seg folder ``root`` into ``out`` (atomically), keeping the
    sketches that ``splits`` (a prepare stage's splits.json) lists; returns one summary line per split."""
    from sketchseg.data.captions import dataset_parser
    from sketchseg.data.fscoco import dataset_classes, read_split
    from sketchseg.data.splits import read_splits

    if samples_per_shard < 1 or min_shards < 1 or max_categories < 0:
        raise InputError("--samples-per-shard and --min-shards must be >= 1 and --max-categories >= 0")
    out = Path(out)
    _check_out_dir(out)
    wanted = read_splits(splits) if splits is not None else None
    # with a splits file (written by `data prepare`, which may have skipped bad sketches), unlisted bad
    # sketches are skipped and a listed one that cannot be read is reported as missing
    on_error = "raise" if wanted is None else "skip"
    parser = dataset_parser(dataset_classes(root))  # the release's own class names known first (SPEC §5)
    summary = []
    with atomic_dir(out) as tmp:
        for split in SPLITS:
            records = read_split(Path(root), split, on_error=on_error)
            if wanted is not None:
                records = _select(records, wanted[split], split, Path(splits))
            index = write_shards(records, tmp, split=split, min_shards=min_shards,
                                 samples_per_shard=samples_per_shard, max_categories=max_categories or None,
                                 seed=seed, parser=parser)  # fmt: skip
            summary.append(f"{split}: {index['num_samples']} samples in {len(index['shards'])} shards")
    return summary
