"""The paper's split protocol and its application to real FSCOCO-Seg folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from sketchseg.data.splits import (
    check_disjoint,
    paper_split,
    read_splits,
    sketches_by_participant,
    write_splits,
)
from sketchseg.errors import DataError


def _by_participant(n_participants: int = 10, per: int = 8) -> dict[str, list[str]]:
    return {f"p{p:02d}": [f"p{p:02d}_{i}" for i in range(per)] for p in range(n_participants)}


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_paper_split_is_deterministic_and_seed_dependent() -> None:
    data = _by_participant()
    assert paper_split(data, 2, 5, seed=3) == paper_split(data, 2, 5, seed=3)
    # dict order does not matter
    shuffled = {p: list(reversed(ids)) for p, ids in reversed(list(data.items()))}
    assert paper_split(shuffled, 2, 5, seed=3) == paper_split(data, 2, 5, seed=3)
    tests = {tuple(paper_split(data, 2, 5, seed=s)["test"]) for s in range(6)}
    assert len(tests) > 1


def test_paper_split_protocol() -> None:
    data = _by_participant(n_participants=10, per=8)
    splits = paper_split(data, test_participants=2, val_per_participant=5, seed=0)
    owner = {sid: p for p, ids in data.items() for sid in ids}
    test_ps = {owner[s] for s in splits["test"]}
    assert len(test_ps) == 2
    # test participants: all their sketches in test, none anywhere else
    assert sorted(splits["test"]) == sorted(s for p in test_ps for s in data[p])
    assert not test_ps & {owner[s] for s in splits["train"] + splits["val"]}
    # exactly 5 validation sketches from every other participant, the rest train
    for p in set(data) - test_ps:
        assert sum(owner[s] == p for s in splits["val"]) == 5
        assert sum(owner[s] == p for s in splits["train"]) == 3
    # disjoint and complete
    all_ids = splits["train"] + splits["val"] + splits["test"]
    assert len(all_ids) == len(set(all_ids)) == 80
    check_disjoint(splits)


def test_paper_split_small_participant_goes_to_val() -> None:
    data = _by_participant(n_participants=4, per=8)
    data["p99"] = ["x1", "x2"]
    in_val = 0
    for seed in range(5):
        splits = paper_split(data, test_participants=1, val_per_participant=5, seed=seed)
        if "x1" not in splits["test"]:
            assert {"x1", "x2"} <= set(splits["val"])
            in_val += 1
    assert in_val > 0


def test_paper_split_errors() -> None:
    with pytest.raises(DataError, match="'a1' appears twice"):
        paper_split({"p1": ["a1"], "p2": ["a1", "b"], "p3": ["c"]}, test_participants=1)
    with pytest.raises(DataError, match="more than 5 participants"):
        paper_split(_by_participant(n_participants=5), test_participants=5)


def test_sketches_by_participant_from_folders(tmp_path: Path) -> None:
    sk = tmp_path / "train" / "sketches"
    for rel in ("p1/a.png", "p1/b.jpg", "p1/.hidden.png", "p1/notes.txt", "p2/c.png", "p3/readme.md"):
        _touch(sk / rel)
    _touch(sk / "stray.png")  # not inside a participant folder
    assert sketches_by_participant(tmp_path) == {"p1": ["a", "b"], "p2": ["c"]}


def test_sketches_by_participant_duplicate_id(tmp_path: Path) -> None:
    _touch(tmp_path / "train/sketches/p1/a.png")
    _touch(tmp_path / "train/sketches/p2/a.jpg")
    with pytest.raises(DataError) as info:
        sketches_by_participant(tmp_path)
    assert str(tmp_path / "train/sketches/p1/a.png") in str(info.value)
    assert str(tmp_path / "train/sketches/p2/a.jpg") in str(info.value)


def test_sketches_by_participant_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "train" / "sketches")):
        sketches_by_participant(tmp_path)


def test_paper_split_on_participant_folders(tmp_path: Path) -> None:
    for p in range(7):
        for i in range(6):
            _touch(tmp_path / f"train/sketches/u{p}/{p}{i:02d}.png")
    by_p = sketches_by_participant(tmp_path)
    splits = paper_split(by_p, test_participants=2, val_per_participant=5, seed=0)
    folders = {path.stem: path.parent.name for path in (tmp_path / "train/sketches").glob("*/*.png")}
    assert len({folders[s] for s in splits["test"]}) == 2 and len(splits["test"]) == 12
    assert len(splits["val"]) == 5 * 5 and len(splits["train"]) == 5


def test_check_disjoint_duplicate_within_split() -> None:
    with pytest.raises(DataError, match="'a' is twice in 'train'"):
        check_disjoint({"train": ["a", "a"], "val": []})


def test_write_read_splits_round_trip(tmp_path: Path) -> None:
    splits = {"train": ["a", "b"], "val": ["c"], "test": ["d"]}
    write_splits(tmp_path / "s.json", splits, {"source": "released"})
    assert read_splits(tmp_path / "s.json") == splits
    with pytest.raises(DataError, match="not found"):
        read_splits(tmp_path / "missing.json")
