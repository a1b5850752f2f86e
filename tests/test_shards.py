"""webdataset shards (SPEC §6.3): round trip, shard layout, DataLoader, atomicity, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchseg.cli import data_shards, main
from sketchseg.data import fscoco
from sketchseg.data.captions import parse_categories
from sketchseg.data.records import SketchRecord
from sketchseg.data.shards import make_dataset, make_loader, read_index, shard_urls, write_shards
from sketchseg.errors import DataError


def _pixels(seed: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=size, dtype=np.uint8)  # [H, W]


def _gray_png(path: Path, seed: int, size: tuple[int, int] = (24, 32)) -> Path:
    Image.fromarray(_pixels(seed, size), mode="L").save(path)
    return path


CAPTIONS = [
    "a giraffe standing on the grass",
    "un café près d'un arbre ☕ — two trees and a house",
    "Kid flying kite very high",
    "",
    "A man is riding a horse on the beach.\nSecond line",
]


def train_records(root: Path, n: int = 5) -> list[SketchRecord]:
    """Train-like records (no vector/labels) with every kind of image file."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            path = _gray_png(root / f"s{i}.png", i)
        elif kind == 1:  # RGB PNG
            rgb = np.stack([_pixels(i), _pixels(i + 100), _pixels(i + 200)], axis=-1)  # [H, W, 3]
            path = root / f"s{i}.png"
            Image.fromarray(rgb, mode="RGB").save(path)
        elif kind == 2:  # JPEG (real train sketches are JPEG or PNG)
            path = root / f"s{i}.jpg"
            Image.fromarray(_pixels(i), mode="L").convert("RGB").save(path, quality=90)
        elif kind == 3:  # transparent background: must become white, not black
            rgba = np.zeros((24, 32, 4), dtype=np.uint8)
            rgba[5:10, 5:10] = (0, 0, 0, 255)
            path = root / f"s{i}.png"
            Image.fromarray(rgba, mode="RGBA").save(path)
        else:
            path = _gray_png(root / f"s{i}.png", i, size=(40, 20))
        participant = None if i % 2 else f"participant-{i % 3}"
        records.append(SketchRecord(f"t{i:04d}", "train", CAPTIONS[i % len(CAPTIONS)], path, participant))
    return records


def val_records(root: Path, n: int = 4, split: str = "val") -> list[SketchRecord]:
    """Annotated records: gray 2-D PNG, raw vector array (various dtypes), per-stroke labels."""
    root.mkdir(parents=True, exist_ok=True)
    dtypes = [np.float32, np.float64, np.int16, np.int64]
    records = []
    for i in range(n):
        rng = np.random.default_rng(1000 + i)
        vector = np.concatenate([rng.uniform(0, 256, (6 + i, 2)), rng.integers(0, 2, (6 + i, 1))], axis=1)
        vector[-1, 2] = 1
        labels = ("giraffe", "grass", "café")[: 1 + i % 3]
        path = _gray_png(root / f"v{i}.png", 50 + i, size=(16, 16))
        vector = vector.astype(dtypes[i % 4])
        caption = f"{labels[0]} near a tree {i}"
        records.append(SketchRecord(f"{split}-{i}", split, caption, path, f"p{i}", vector, labels))
    return records


def _read_all(out: Path, split: str, **kw) -> dict[str, dict]:
    samples = list(make_dataset(out, split, shuffle=False, seed=0, **kw))
    by_id = {s["id"]: s for s in samples}
    assert len(by_id) == len(samples), "a sample came back twice"
    return by_id


def test_round_trip_train_like(tmp_path):
    records = train_records(tmp_path / "data", n=5)
    out = tmp_path / "shards"
    index = write_shards(records, out, split="train", min_shards=2, seed=3)
    assert index["num_samples"] == 5 and len(index["shards"]) == 2
    got = _read_all(out, "train")
    raw = _read_all(out, "train", decode=False)
    assert sorted(got) == sorted(r.id for r in records)
    for record in records:
        sample = got[record.id]
        assert set(sample) == {"id", "image", "caption", "categories", "participant", "vector", "labels"}
        assert sample["caption"] == record.caption
        assert sample["categories"] == parse_categories(record.caption, max_categories=3)
        assert sample["participant"] == (record.participant or "")
        assert sample["vector"] is None and sample["labels"] is None
        image = sample["image"]
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 2
        with Image.open(record.image_path) as original:
            if original.mode == "RGBA":
                expected = np.full((24, 32), 255, dtype=np.uint8)
                expected[5:10, 5:10] = 0
            else:
                expected = np.asarray(original.convert("L"))
        np.testing.assert_array_equal(image, expected)
        png = raw[record.id]["image"]
        assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
        with Image.open(record.image_path) as original:
            if original.format == "PNG" and original.mode == "L":  # already grayscale PNG: stored as is
                assert png == record.image_path.read_bytes()
    # hand-checked values
    assert got["t0000"]["categories"] == ["giraffe", "grass"]
    assert got["t0002"]["categories"] == ["kid", "kite"]
    assert got["t0003"]["categories"] == [] and got["t0003"]["caption"] == ""
    assert got["t0001"]["caption"] == "un café près d'un arbre ☕ — two trees and a house"


def test_round_trip_val_like(tmp_path):
    records = val_records(tmp_path / "data", n=4)
    out = tmp_path / "shards"
    index = write_shards(records, out, split="val", max_categories=None)
    assert index["fields"] == ["png", "caption.txt", "categories.json", "participant.txt", "vector.npy", "labels.json"]
    got = _read_all(out, "val")
    assert sorted(got) == sorted(r.id for r in records)
    for record in records:
        sample = got[record.id]
        assert sample["vector"].dtype == record.vector.dtype
        assert sample["vector"].shape == record.vector.shape
        np.testing.assert_array_equal(sample["vector"], record.vector)
        assert sample["labels"] == list(record.labels)
        assert sample["participant"] == record.participant
        assert sample["caption"] == record.caption
        assert sample["image"].shape == (16, 16) and sample["image"].dtype == np.uint8
        np.testing.assert_array_equal(sample["image"], np.asarray(Image.open(record.image_path)))
    assert got["val-0"]["categories"] == ["giraffe", "tree"]


def test_shard_count_and_even_spread(tmp_path):
    records = val_records(tmp_path / "data", n=7)
    index = write_shards(records, tmp_path / "a", split="val", samples_per_shard=2, min_shards=2)
    assert len(index["shards"]) == 4  # ceil(7 / 2)
    assert sorted(index["samples_per_shard"]) == [1, 2, 2, 2]
    assert index["shards"] == [f"val-{i:06d}.tar" for i in range(4)]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted([*index["shards"], "val.json"])
    assert read_index(tmp_path / "a", "val") == index
    index = write_shards(records, tmp_path / "b", split="val", samples_per_shard=1000, min_shards=3)
    assert len(index["shards"]) == 3 and sorted(index["samples_per_shard"]) == [2, 2, 3]
    index = write_shards(records[:1], tmp_path / "c", split="val", min_shards=2)
    assert len(index["shards"]) == 1  # never an empty shard
    index = write_shards(records, tmp_path / "d", split="val", num_shards=5)
    assert sorted(index["samples_per_shard"]) == [1, 1, 1, 2, 2]


def test_same_input_gives_identical_shards_and_seed_changes_order(tmp_path):
    records = val_records(tmp_path / "data", n=6)
    write_shards(records, tmp_path / "a", split="val", seed=0)
    write_shards(records, tmp_path / "b", split="val", seed=0)
    write_shards(records, tmp_path / "c", split="val", seed=1)
    names = shard_urls(tmp_path / "a", "val")
    for url in names:
        name = Path(url).name
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    def order(out):
        return [s["id"] for s in make_dataset(out, "val", shuffle=False, seed=0)]

    assert order(tmp_path / "a") == order(tmp_path / "b")
    assert order(tmp_path / "a") != order(tmp_path / "c")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_yields_every_sample_exactly_once(tmp_path, num_workers):
    records = val_records(tmp_path / "data", n=9)
    out = tmp_path / "shards"
    write_shards(records, out, split="val", min_shards=2)
    loader = make_loader(out, "val", batch_size=2, num_workers=num_workers)
    ids, batches = [], 0
    for batch in loader:
        batches += 1
        assert batch["image"].shape[1:] == (16, 16) and batch["image"].ndim == 3  # same-size images stack
        assert len(batch["vector"]) == len(batch["id"]) == len(batch["labels"]) == len(batch["categories"])
        assert all(isinstance(v, np.ndarray) for v in batch["vector"])
        ids.extend(batch["id"])
    assert sorted(ids) == sorted(r.id for r in records)
    assert batches >= 5


def test_variable_size_images_stay_a_list(tmp_path):
    records = train_records(tmp_path / "data", n=5)
    out = tmp_path / "shards"
    write_shards(records, out, split="train", num_shards=1)
    batch = next(iter(make_loader(out, "train", batch_size=5, num_workers=0)))
    assert isinstance(batch["image"], list) and {img.ndim for img in batch["image"]} == {2}
    assert batch["vector"] == [None] * 5


def test_shuffle_is_deterministic_for_a_seed_and_changes_per_epoch(tmp_path):
    records = val_records(tmp_path / "data", n=20)
    out = tmp_path / "shards"
    write_shards(records, out, split="val", min_shards=4)
    plain = [s["id"] for s in make_dataset(out, "val", shuffle=False, seed=0)]

    def ids(dataset):
        return [s["id"] for s in dataset]

    first = make_dataset(out, "val", shuffle=True, seed=7, shuffle_buffer=8)
    epoch0, epoch1 = ids(first), ids(first)
    second = make_dataset(out, "val", shuffle=True, seed=7, shuffle_buffer=8)
    assert ids(second) == epoch0 and ids(second) == epoch1
    assert sorted(epoch0) == sorted(plain) and epoch0 != plain and epoch1 != epoch0
    resumed = make_dataset(out, "val", shuffle=True, seed=7, shuffle_buffer=8, epoch=1)
    assert ids(resumed) == epoch1


def test_failure_midway_leaves_no_shard_set_behind(tmp_path):
    records = val_records(tmp_path / "data", n=6)
    broken = list(records)
    broken[3] = SketchRecord("bad", "val", "a tree", tmp_path / "missing.png", "p", records[3].vector, ("tree",))
    fresh = tmp_path / "fresh"
    with pytest.raises(DataError, match="missing.png: sketch image not found"):
        write_shards(broken, fresh, split="val", num_shards=3)
    assert list(fresh.iterdir()) == []

    # an existing set survives a failed rewrite untouched
    out = tmp_path / "shards"
    write_shards(records, out, split="val", num_shards=2)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError):
        write_shards(broken, out, split="val", num_shards=3)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_exception_from_caption_parsing_midway_is_atomic(tmp_path, monkeypatch):
    import sketchseg.data.captions as captions

    calls = []

    def flaky(caption, **kw):
        calls.append(caption)
        if len(calls) == 4:
            raise RuntimeError("boom")
        return ["tree"]

    monkeypatch.setattr(captions, "parse_categories", flaky)
    out = tmp_path / "shards"
    with pytest.raises(RuntimeError, match="boom"):
        write_shards(val_records(tmp_path / "data", n=6), out, split="val", num_shards=2)
    assert len(calls) == 4 and list(out.iterdir()) == []


def test_rewrite_replaces_stale_shards_of_that_split_only(tmp_path):
    out = tmp_path / "shards"
    write_shards(val_records(tmp_path / "v", n=8), out, split="val", num_shards=4)
    write_shards(val_records(tmp_path / "t", n=3, split="test"), out, split="test", num_shards=3)
    write_shards(val_records(tmp_path / "v", n=8), out, split="val", num_shards=2)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["test-000000.tar", "test-000001.tar", "test-000002.tar", "test.json"] + [
        "val-000000.tar",
        "val-000001.tar",
        "val.json",
    ]
    assert len(_read_all(out, "val")) == 8 and len(_read_all(out, "test")) == 3


def test_bad_records_are_reported(tmp_path):
    records = val_records(tmp_path / "data", n=3)
    out = tmp_path / "shards"
    with pytest.raises(DataError, match="no sketches"):
        write_shards([], out, split="val")
    with pytest.raises(DataError, match="appears twice"):
        write_shards([records[0], records[0]], out, split="val")
    dotted = SketchRecord("a.b", "val", "x", records[0].image_path, None, records[0].vector, records[0].labels)
    with pytest.raises(DataError, match="not usable as a shard key"):
        write_shards([dotted], out, split="val")
    unannotated = SketchRecord("x1", "test", "a tree", records[0].image_path)
    with pytest.raises(DataError, match="needs the vector strokes"):
        write_shards([unannotated], out, split="test")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    junk = SketchRecord("x2", "train", "a tree", tmp_path / "junk.png")
    with pytest.raises(DataError, match="junk.png: unreadable sketch image"):
        write_shards([junk], out, split="train")
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(DataError, match="sketchseg data shards"):
        shard_urls(out, "val")


class _FakeReader:
    """Stands in for sketchseg.data.fscoco.read_split, serving records built by this test."""

    def __init__(self, root: Path):
        self.data = {
            "train": train_records(root / "train", n=5),
            "val": val_records(root / "val", n=4),
            "test": val_records(root / "test", n=3, split="test"),
        }
        self.calls: list[tuple[Path, str, str]] = []

    def __call__(self, root: Path, split: str, *, on_error: str = "raise", **kw) -> list[SketchRecord]:
        self.calls.append((Path(root), split, on_error))
        return list(self.data[split])


@pytest.fixture
def fake_reader(tmp_path, monkeypatch) -> _FakeReader:
    reader = _FakeReader(tmp_path / "data")
    monkeypatch.setattr(fscoco, "read_split", reader)
    return reader


def test_cli_writes_every_split(tmp_path, fake_reader, capsys):
    fake = fake_reader
    out = tmp_path / "out"
    code = main(
        ["data", "shards", "--root", str(tmp_path / "data"), "--out", str(out), "--min-shards", "2",
         "--max-categories", "1"]
    )  # fmt: skip
    assert code == 0
    assert [c[1] for c in fake.calls] == ["train", "val", "test"] and fake.calls[0][2] == "raise"
    for split, n in (("train", 5), ("val", 4), ("test", 3)):
        index = json.loads((out / f"{split}.json").read_text())
        assert index["num_samples"] == n and len(index["shards"]) == 2
        assert all(len(s["categories"]) <= 1 for s in _read_all(out, split).values())
    assert "train: 5 samples in 2 shards" in capsys.readouterr().out


def test_cli_splits_file_selects_ids(tmp_path, fake_reader):
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"meta": {}, "train": ["t0001", "t0003"], "val": ["val-2"], "test": ["test-0"]}))
    out = tmp_path / "out"
    assert main(["data", "shards", "--root", str(tmp_path / "data"), "--splits", str(splits), "--out", str(out)]) == 0
    assert sorted(_read_all(out, "train")) == ["t0001", "t0003"]
    assert sorted(_read_all(out, "val")) == ["val-2"]
    assert {c[2] for c in fake_reader.calls} == {"skip"}  # listed ids decide; unlisted bad sketches may skip
    splits.write_text(json.dumps({"meta": {}, "train": ["t0001", "nope"], "val": ["val-2"], "test": ["test-0"]}))
    assert main(["data", "shards", "--root", str(tmp_path / "data"), "--splits", str(splits), "--out", str(out)]) == 2
    assert sorted(_read_all(out, "train")) == ["t0001", "t0003"]  # the failed run changed nothing


def test_cli_refuses_to_replace_a_foreign_directory(tmp_path, fake_reader, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["data", "shards", "--root", str(tmp_path / "data"), "--out", str(out)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"


def test_cli_help_describes_the_command_and_its_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["data", "shards", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    assert text.startswith("usage: sketchseg data shards [-h] --root DATA_ROOT [--splits SPLITS_JSON] --out OUTDIR")
    assert data_shards.HELP in text
    for option in ("--samples-per-shard N", "--min-shards N", "--max-categories N", "--seed SEED"):
        assert option in text, option
    assert "categories kept per caption (0 = no limit; default 3)" in text
    with pytest.raises(SystemExit) as done:
        main(["data", "--help"])
    assert done.value.code == 0
    assert f"shards {data_shards.HELP}" in " ".join(capsys.readouterr().out.split())


def _write_layout(root: Path) -> None:
    """A tiny dataset in the FSCOCO-Seg layout of SPEC §6.1."""
    (root / "train/sketches/p1").mkdir(parents=True)
    (root / "train/text/p1").mkdir(parents=True)
    for i, caption in enumerate(["a giraffe standing on the grass", "two trees and a house"]):
        _gray_png(root / f"train/sketches/p1/10{i}.png", i, size=(64, 64))
        (root / f"train/text/p1/10{i}.txt").write_text(caption)
    for split, base in (("val", 200), ("test", 300)):
        for sub in ("images", "captions", "vector_sketches", "classes"):
            (root / split / sub).mkdir(parents=True)
        for i in range(2):
            sid = f"{base + i}"
            _gray_png(root / f"{split}/images/{sid}.png", base + i, size=(512, 512))
            (root / f"{split}/captions/{sid}.txt").write_text("a giraffe near a tree")
            vector = np.array([[10, 10, 0], [50, 60, 1], [100, 100, 0], [120, 90, 0], [130, 140, 1]], np.float64)
            np.save(root / f"{split}/vector_sketches/{sid}.npy", vector)
            (root / f"{split}/classes/{sid}.json").write_text(json.dumps(["giraffe", "tree"]))
    (root / "all_classes.json").write_text(json.dumps(["giraffe", "grass", "house", "tree"]))


def test_cli_end_to_end_with_the_dataset_reader(tmp_path):
    root = tmp_path / "data"
    _write_layout(root)
    out = tmp_path / "shards"
    assert main(["data", "shards", "--root", str(root), "--out", str(out)]) == 0
    train = _read_all(out, "train")
    assert train["100"]["categories"] == ["giraffe", "grass"] and train["100"]["participant"] == "p1"
    assert train["101"]["categories"] == ["tree", "house"] and train["101"]["vector"] is None
    test = _read_all(out, "test")
    assert sorted(test) == ["300", "301"] and test["300"]["labels"] == ["giraffe", "tree"]
    assert test["300"]["vector"].shape == (5, 3) and test["300"]["image"].shape == (512, 512)


def test_custom_caption_parser_and_max_categories(tmp_path):
    from sketchseg.data.captions import DEFAULT_STOPLIST, make_parser

    record = val_records(tmp_path / "data", n=1)[0]
    record = SketchRecord(
        "s1", "val", "a kite in the sky above two trees and a house near a car", record.image_path, None,
        record.vector, record.labels,
    )  # fmt: skip
    out = tmp_path / "shards"
    write_shards([record], out, split="val", max_categories=None)
    assert _read_all(out, "val")["s1"]["categories"] == ["kite", "sky", "tree", "house", "car"]
    write_shards([record], out, split="val", max_categories=3)
    assert _read_all(out, "val")["s1"]["categories"] == ["kite", "sky", "tree"]
    no_sky = make_parser("offline", stoplist=(*DEFAULT_STOPLIST, "sky"))
    index = write_shards([record], out, split="val", max_categories=3, parser=no_sky)
    assert _read_all(out, "val")["s1"]["categories"] == ["kite", "tree", "house"]
    assert index["caption_parser"] == "pattern+lemminflect" and index["max_categories"] == 3


def test_split_by_node_gives_each_rank_its_share(tmp_path, monkeypatch):
    records = val_records(tmp_path / "data", n=8)
    out = tmp_path / "shards"
    write_shards(records, out, split="val", num_shards=4)
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        ids = [s["id"] for s in make_dataset(out, "val", shuffle=False, seed=0, split_by_node=True)]
        assert len(ids) == 4
        seen.extend(ids)
        everything = [s["id"] for s in make_dataset(out, "val", shuffle=False, seed=0)]
        assert sorted(everything) == sorted(r.id for r in records)  # without node splitting: all shards
    assert sorted(seen) == sorted(r.id for r in records)
