"""Caption -> categories (SPEC §5), offline."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import nltk
import pytest

from sketchseg.data import captions
from sketchseg.data.captions import (
    CaptionParser,
    default_parser,
    make_parser,
    parse_categories,
    parser_backend,
    singularize,
)
from sketchseg.errors import DataError


@pytest.fixture
def no_nltk_data(monkeypatch):
    """NLTK data absent, and any download attempt fails the test."""

    def missing(resource, *args, **kwargs):
        raise LookupError(f"{resource} not found (test)")

    def forbidden(*args, **kwargs):
        raise AssertionError("nltk.download must never be called")

    monkeypatch.setattr(nltk.data, "find", missing)
    monkeypatch.setattr(nltk, "download", forbidden)
    default_parser.cache_clear()
    yield
    default_parser.cache_clear()


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        # required cases
        ("a giraffe standing on the grass", ["giraffe", "grass"]),
        ("Kid flying kite very high", ["kid", "kite"]),
        ("two trees and a house under the clouds", ["tree", "house", "cloud"]),
        ("A man is riding a horse on the beach.", ["man", "horse", "beach"]),
        ("There is a picture of a bench next to a tree", ["bench", "tree"]),
        # captions of the kind the synthetic generator writes
        ("a man is riding a horse on the beach", ["man", "horse", "beach"]),
        ("a kid flying a kite in the sky", ["kid", "kite", "sky"]),
        ("a picture of a bench next to a tree", ["bench", "tree"]),
        ("a small house with a fence", ["house", "fence"]),
        ("tall giraffes eating from a tree", ["giraffe", "tree"]),
        ("an airplane flying over the mountains", ["airplane", "mountain"]),
        ("a boat on the water near a bird", ["boat", "water", "bird"]),
        ("cars on the road", ["car", "road"]),
        ("Trees with leaves near a lake", ["tree", "leaf", "lake"]),
        ("A cow grazing in a field with sheep", ["cow", "field", "sheep"]),
        ("Three people standing in front of a building", ["person", "building"]),
        ("zebras drinking water at a pond", ["zebra", "water", "pond"]),
        ("a person skiing down a slope", ["person", "slope"]),
        ("a boy rides a skateboard", ["boy", "skateboard"]),
        ("a man surfs a wave", ["man", "wave"]),
        ("the bear climbs a tree", ["bear", "tree"]),
        ("kites fly high in the sky", ["kite", "sky"]),
        ("children play football on the grass", ["child", "football", "grass"]),
        ("a couple of ducks swim in the pond", ["duck", "pond"]),
        ("a lot of cars parked near a bus", ["car", "bus"]),
        ("someone fishing from a boat", ["boat"]),
        ("in the middle of the picture is a tree", ["tree"]),
        ("a teddy bear sitting on a chair", ["teddy bear", "chair"]),
        ("two teddy bears on a bench", ["teddy bear", "bench"]),
        ("a bus parked next to a stop sign", ["bus", "stop sign"]),
        ("a plate with pizza and a glass of wine", ["plate", "pizza", "glass", "wine"]),
        ("three ponies and wolves under skies", ["pony", "wolf", "sky"]),
        ("policemen near buses and benches", ["policeman", "bus", "bench"]),
        ("an old man's hat", ["man", "hat"]),
        ("Trees near a lake. A dog runs.", ["tree", "lake", "dog"]),
        ("a dog, a cat and another dog", ["dog", "cat"]),
        ("a tree next to two trees and some more trees", ["tree"]),
        ("a picture of a scene with a lot of trees on the left side", ["tree"]),
    ],
)
def test_categories_of_captions(caption, expected):
    assert parse_categories(caption) == expected


@pytest.mark.parametrize("caption", ["", "   ", "very high up", "it is so pretty!", "...", "2 3 4"])
def test_caption_without_nouns_gives_empty_list(caption):
    assert parse_categories(caption) == []


@pytest.mark.parametrize("bad", [None, 42, b"a tree", ["a tree"]])
def test_non_string_caption_is_a_type_error(bad):
    with pytest.raises(TypeError, match="caption must be a str, got"):
        parse_categories(bad)


def test_max_categories_keeps_the_first_in_caption_order():
    caption = "two trees and a house under the clouds near a car"
    assert parse_categories(caption) == ["tree", "house", "cloud", "car"]
    assert parse_categories(caption, max_categories=3) == ["tree", "house", "cloud"]
    assert parse_categories(caption, max_categories=1) == ["tree"]
    assert parse_categories(caption, max_categories=0) == []
    # duplicates do not use up the budget
    assert parse_categories("a tree, another tree, a house and a car", max_categories=2) == ["tree", "house"]
    with pytest.raises(ValueError, match="max_categories"):
        parse_categories(caption, max_categories=-1)


def test_keep_adjectives():
    assert parse_categories("a small house with a fence", keep_adjectives=True) == ["small house", "fence"]
    assert parse_categories("tall giraffes eating from a tree", keep_adjectives=True) == ["tall giraffe", "tree"]
    # quantity/position adjectives are never kept; differently described objects stay distinct
    assert parse_categories("many trees and several big houses", keep_adjectives=True) == ["tree", "big house"]
    assert parse_categories("a small house and a big house", keep_adjectives=True) == ["small house", "big house"]
    assert parse_categories("a small house and a big house") == ["house"]


def test_parsing_is_deterministic_across_calls_parsers_and_hash_seeds():
    caps = [
        "a man is riding a horse on the beach",
        "two trees and a house under the clouds near a car, a dog and a cat",
        "a small house with a fence",
    ]
    first = [parse_categories(c) for c in caps]
    assert all([parse_categories(c) for c in caps] == first for _ in range(20))
    fresh = make_parser("offline")
    assert [parse_categories(c, parser=fresh) for c in caps] == first
    # a different string-hash seed changes set iteration order: the output must not change
    code = (
        "import json, sys; from sketchseg.data.captions import parse_categories; "
        "print(json.dumps([parse_categories(c) for c in json.loads(sys.argv[1])]))"
    )
    import json

    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(caps)], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout.strip())
    assert outputs == {json.dumps(first)}


SINGULARS = {
    # regular
    "trees": "tree", "giraffes": "giraffe", "horses": "horse", "cows": "cow", "clouds": "cloud", "houses": "house",
    "waves": "wave", "gloves": "glove", "kites": "kite", "shoes": "shoe", "canoes": "canoe",
    # -es, -ies, -ves
    "buses": "bus", "glasses": "glass", "benches": "bench", "boxes": "box", "brushes": "brush", "dresses": "dress",
    "ponies": "pony", "skies": "sky", "butterflies": "butterfly", "leaves": "leaf", "knives": "knife",
    "wolves": "wolf", "shelves": "shelf", "potatoes": "potato", "cookies": "cookie",
    # irregular
    "people": "person", "children": "child", "men": "man", "women": "woman", "mice": "mouse", "geese": "goose",
    "teeth": "tooth", "feet": "foot", "policemen": "policeman", "snowmen": "snowman", "cacti": "cactus",
    # invariant
    "sheep": "sheep", "deer": "deer", "fish": "fish", "scissors": "scissors",
    # singular words ending in s, and singulars
    "grass": "grass", "bus": "bus", "glass": "glass", "cross": "cross", "dress": "dress", "cactus": "cactus",
    "tennis": "tennis", "lens": "lens", "gas": "gas", "tree": "tree", "house": "house", "sky": "sky",
    "Trees": "tree",
}  # fmt: skip


def test_singulariser_table():
    assert {word: singularize(word) for word in SINGULARS} == SINGULARS


def test_offline_backend_when_nltk_data_is_absent(no_nltk_data, caplog):
    parser = make_parser("auto")
    assert parser.backend == "pattern+rules"
    assert parse_categories("Kid flying kite very high", parser=parser) == ["kid", "kite"]
    with caplog.at_level(logging.INFO, logger="sketchseg.data.captions"):
        assert parse_categories("two trees and a house") == ["tree", "house"]
        assert parse_categories("a giraffe standing on the grass") == ["giraffe", "grass"]
        assert parser_backend() == "pattern+rules"
    reports = [r.getMessage() for r in caplog.records if "caption parser backend" in r.getMessage()]
    assert len(reports) == 1 and "pattern+rules" in reports[0]


def test_explicit_nltk_backend_without_data_names_what_to_install(no_nltk_data):
    with pytest.raises(DataError, match="averaged_perceptron_tagger_eng"):
        make_parser("nltk")
    with pytest.raises(ValueError, match="unknown caption parser backend"):
        make_parser("spacy")


class _BadNltkTagger:
    """Stands in for NLTK's perceptron tagger, with the mistakes it makes on sketch captions."""

    TAGS = {
        "Kid flying kite very high": ["NNP", "NN", "VBP", "RB", "JJ"],
        "a kid flying a kite in the clouds": ["DT", "NN", "NN", "DT", "VBP", "IN", "DT", "NNS"],
        "trees with leaves": ["NNS", "IN", "VBZ"],
        "a man surfs a wave": ["DT", "NN", "NNS", "DT", "NN"],
    }

    def tag(self, tokens):
        return list(zip(tokens, self.TAGS[" ".join(tokens)], strict=True))


def test_nltk_backend_is_used_when_its_data_is_installed(monkeypatch):
    import nltk.tag.perceptron

    lemmatized = []

    def fake_lemmatizer():
        return lambda word: lemmatized.append(word) or {"clouds": "cloud", "leaves": "leaf"}.get(word, word)

    monkeypatch.setattr(nltk.data, "find", lambda resource, *a, **k: f"/fake/{resource}")
    monkeypatch.setattr(nltk, "download", lambda *a, **k: pytest.fail("nltk.download called"))
    monkeypatch.setattr(nltk.tag.perceptron, "PerceptronTagger", _BadNltkTagger)
    monkeypatch.setattr(captions, "_wordnet_lemmatizer", fake_lemmatizer)
    parser = make_parser("auto")
    assert parser.backend == "nltk-perceptron+wordnet"
    # the tag corrections repair "flying/NN" and "kite/VBP"
    assert parse_categories("Kid flying kite very high", parser=parser) == ["kid", "kite"]
    assert parse_categories("a kid flying a kite in the clouds", parser=parser) == ["kid", "kite", "cloud"]
    assert parse_categories("trees with leaves", parser=parser) == ["tree", "leaf"]
    assert parse_categories("a man surfs a wave", parser=parser) == ["man", "wave"]
    assert "clouds" in lemmatized  # WordNet serves plural-tagged nouns


def test_unreadable_nltk_data_falls_back_to_offline(monkeypatch, caplog):
    import nltk.tag.perceptron

    def broken(*args, **kwargs):
        raise OSError("truncated model file")

    def broken_wordnet():
        raise OSError("lexnames missing")

    monkeypatch.setattr(nltk.data, "find", lambda resource, *a, **k: f"/fake/{resource}")
    monkeypatch.setattr(nltk.tag.perceptron, "PerceptronTagger", broken)
    monkeypatch.setattr(captions, "_wordnet_lemmatizer", broken_wordnet)
    with caplog.at_level(logging.WARNING, logger="sketchseg.data.captions"):
        parser = make_parser("auto")
    assert parser.backend == "pattern+rules"
    assert "truncated model file" in caplog.text and "lexnames missing" in caplog.text
    with pytest.raises(DataError, match="unreadable"):
        make_parser("nltk")


def test_custom_stoplist_and_compounds():
    parser = make_parser("offline", stoplist=["tree"], compounds=["fence post"])
    assert parse_categories("a picture of a tree by a fence post", parser=parser) == ["picture", "fence post"]
    assert isinstance(parser, CaptionParser)


def test_parsing_1000_captions_is_fast():
    caps = [f"a man is riding a horse on the beach near {i} trees and a small house" for i in range(1000)]
    parse_categories(caps[0])  # build the parser first
    start = time.perf_counter()
    results = [parse_categories(c) for c in caps]
    elapsed = time.perf_counter() - start
    assert results[0] == ["man", "horse", "beach", "tree", "house"]
    assert elapsed < 2.0, f"1000 captions took {elapsed:.2f} s"
