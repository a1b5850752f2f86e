"""Caption GENERATION for synthetic scenes (parsing captions is :mod:`sketchseg.data.captions`).

Captions read like FS-COCO's: short, mostly lower case, with articles and number words, plurals ("two trees",
"three people"), synonyms ("man", "kid" for a person; "bike" for a bicycle), size and descriptive adjectives,
participles ("flying", "parked"), spatial phrases from the actual layout ("next to", "under", "behind",
"in the sky", "on the road", "in the background"), sometimes a non-object lead ("a picture of ..."), and
sometimes an object left unmentioned. Stroke labels keep the canonical category names; only captions vary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sketchseg.data.synth.scene import PlacedObject

# canonical category -> [(singular, plural, weight)]; plural None = mass noun
NOUNS: dict[str, list[tuple[str, str | None, float]]] = {
    "house": [("house", "houses", 4.0), ("cottage", "cottages", 0.6), ("hut", "huts", 0.4), ("home", "homes", 0.4)],
    "tree": [("tree", "trees", 1.0)],
    "sun": [("sun", "suns", 1.0)],
    "cloud": [("cloud", "clouds", 1.0)],
    "car": [("car", "cars", 4.0), ("vehicle", "vehicles", 0.3)],
    "person": [("man", "men", 3.0), ("woman", "women", 2.0), ("person", "people", 1.5), ("boy", "boys", 1.0),
               ("girl", "girls", 1.0), ("kid", "kids", 1.0), ("child", "children", 0.7), ("lady", "ladies", 0.4)],
    "dog": [("dog", "dogs", 4.0), ("puppy", "puppies", 1.0)],
    "bird": [("bird", "birds", 1.0)],
    "boat": [("boat", "boats", 4.0), ("ship", "ships", 0.8), ("sailboat", "sailboats", 0.6)],
    "fence": [("fence", "fences", 1.0)],
    "mountain": [("mountain", "mountains", 3.0), ("hill", "hills", 1.0)],
    "road": [("road", "roads", 3.0), ("street", "streets", 1.0)],
    "grass": [("grass", None, 3.0), ("field", "fields", 1.0)],
    "water": [("water", None, 2.0), ("sea", "seas", 1.0), ("lake", "lakes", 1.0), ("river", "rivers", 1.0)],
    "flower": [("flower", "flowers", 1.0)],
    "kite": [("kite", "kites", 1.0)],
    "bench": [("bench", "benches", 1.0)],
    "horse": [("horse", "horses", 4.0), ("pony", "ponies", 0.6)],
    "train": [("train", "trains", 1.0)],
    "airplane": [("airplane", "airplanes", 2.0), ("plane", "planes", 2.0), ("jet", "jets", 0.4)],
    "giraffe": [("giraffe", "giraffes", 1.0)],
    "elephant": [("elephant", "elephants", 1.0)],
    "bicycle": [("bicycle", "bicycles", 2.0), ("bike", "bikes", 2.0)],
    "umbrella": [("umbrella", "umbrellas", 1.0)],
}

# descriptive adjectives used regardless of size
ADJECTIVES: dict[str, list[str]] = {
    "house": ["old", "wooden", "little", "small"],
    "tree": ["tall", "big", "leafy"],
    "cloud": ["fluffy", "big", "white"],
    "sun": ["bright", "big"],
    "car": ["small", "old", "little"],
    "person": ["young", "old", "tall", "little"],
    "dog": ["small", "little", "cute"],
    "mountain": ["high", "snowy", "big"],
    "road": ["long", "empty", "winding"],
    "grass": ["tall", "green"],
    "water": ["calm"],
    "flower": ["small", "pretty"],
    "fence": ["wooden", "long", "small"],
    "bench": ["wooden", "empty", "long"],
    "train": ["long", "old"],
    "airplane": ["big", "small"],
    "boat": ["small", "little"],
    "giraffe": ["tall"],
    "elephant": ["big", "huge"],
    "horse": ["big", "beautiful"],
    "bicycle": ["old"],
    "umbrella": ["big", "open"],
    "kite": ["small"],
    "bird": ["small", "little"],
}

PARTICIPLES: dict[str, list[str]] = {
    "person": ["standing", "walking", "running", "waving"],
    "dog": ["running", "sitting", "playing"],
    "horse": ["standing", "running", "grazing"],
    "giraffe": ["standing", "walking"],
    "elephant": ["walking", "standing"],
    "car": ["parked", "driving"],
    "bird": ["flying"],
    "kite": ["flying"],
    "airplane": ["flying"],
    "boat": ["sailing", "floating"],
    "sun": ["shining"],
    "cloud": ["floating"],
    "train": ["passing", "moving"],
    "bicycle": ["parked"],
}

# how likely a category is named in a caption at all
MENTION = {"sky": 0.78, "surface": 0.72, "backdrop": 0.82, "ground": 0.92}
# which category becomes the caption's subject
PRIORITY = {
    "person": 10, "dog": 8, "horse": 8, "giraffe": 8, "elephant": 8, "car": 7, "train": 7, "boat": 7,
    "house": 6, "bicycle": 5, "bench": 5, "umbrella": 4, "tree": 4, "flower": 3, "fence": 2, "airplane": 2,
    "kite": 2, "mountain": 1, "sun": 1, "cloud": 1, "bird": 1, "road": 0.5, "grass": 0.5, "water": 0.5,
}
NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
LEADS = ["a picture of ", "a sketch of ", "a drawing of ", "an image of ", "a scene with ", "this is a picture of "]
SURFACE_PREP = {"grass": "on", "field": "in", "water": "on", "sea": "on", "lake": "on", "river": "on", "road": "on",
                "street": "on"}


def _pick(rng: np.random.Generator, items: Sequence, weights: Sequence[float] | None = None):
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class _Group:
    """All instances of one category in a scene, with the caption words chosen for them."""

    def __init__(self, category: str, objects: list[PlacedObject], rng: np.random.Generator):
        self.category = category
        self.objects = objects
        self.zone = objects[0].zone
        self.n = len(objects)
        xs = [(o.bbox[0] + o.bbox[2]) / 2 for o in objects]
        self.cx = float(np.mean(xs))
        self.base = float(np.mean([o.base for o in objects]))
        self.x0 = min(o.bbox[0] for o in objects)
        self.x1 = max(o.bbox[2] for o in objects)
        self.top = min(o.bbox[1] for o in objects)
        self.height = float(np.mean([o.bbox[3] - o.bbox[1] for o in objects]))
        self.rel = float(np.mean([o.rel_size for o in objects]))
        nouns = NOUNS[category]
        self.singular, self.plural_word, _ = _pick(rng, nouns, [w for *_, w in nouns])
        self.mass = self.plural_word is None
        # mountain ranges and birds' flocks read as plurals even when drawn as one object
        self.plural = self.n > 1 or (category == "mountain" and rng.random() < 0.55)

    def head(self) -> str:
        if self.plural and not self.mass:
            return str(self.plural_word)
        return self.singular


def _adjective(g: _Group, rng: np.random.Generator) -> str:
    if g.rel < 0.9 and rng.random() < 0.5:
        return _pick(rng, ["small", "little", "tiny"])
    if g.rel > 1.12 and rng.random() < 0.5:
        return _pick(rng, ["tall"] if g.category in ("tree", "giraffe") else ["big", "large", "huge"])
    return _pick(rng, ADJECTIVES.get(g.category, ["small"]))


def noun_phrase(g: _Group, rng: np.random.Generator, definite: bool = False, adjective: float = 0.3) -> str:
    """The noun phrase naming a group: determiner, optional adjective, noun (singular or plural)."""
    if g.category == "person" and g.n == 2 and not definite and rng.random() < 0.3:
        a, b = _pick(rng, [("man", "woman"), ("boy", "girl"), ("woman", "child"), ("man", "dog")][:3])
        return f"a {a} and a {b}" if rng.random() < 0.7 else f"a {a} and {_article(b)} {b}"
    adj = _adjective(g, rng) + " " if rng.random() < adjective else ""
    noun = g.head()
    if g.plural and not g.mass:
        if definite:
            return f"the {adj}{noun}"
        if g.n > 1:
            det = _pick(rng, [NUMBERS[g.n], "some", "a few" if g.n >= 3 else "some", "several" if g.n >= 3 else "two",
                              ""], [0.55, 0.12, 0.08, 0.08, 0.17])
            if det == "two" and g.n != 2:
                det = NUMBERS[g.n]
        else:
            det = _pick(rng, ["", "some"], [0.7, 0.3])
        return f"{det} {adj}{noun}".strip()
    if g.mass:
        det = "the" if definite else _pick(rng, ["the", "some", ""], [0.5, 0.2, 0.3])
        return f"{det} {adj}{noun}".strip()
    if definite or g.category in ("sun", "road", "water") and rng.random() < 0.7:
        return f"the {adj}{noun}"
    det = _pick(rng, ["a", "one"], [0.92, 0.08])
    word = (adj or noun)[0]
    if det == "a":
        det = _article(word)
    return f"{det} {adj}{noun}"


def _relation(a: _Group, b: _Group, rng: np.random.Generator) -> str | None:
    """A spatial phrase placing group ``a`` relative to ``b`` ("next to the house"), or None."""
    if b.zone == "surface":
        if a.zone != "ground":
            return None
        prep = SURFACE_PREP.get(b.head(), "on")
        if b.category == "water" and a.category != "boat":  # only boats go on the water
            prep = _pick(rng, ["near", "by", "next to"])
        return f"{prep} {noun_phrase(b, rng, definite=True, adjective=0.1)}"
    if b.zone == "backdrop":
        return f"in front of {noun_phrase(b, rng, definite=rng.random() < 0.6, adjective=0.15)}"
    if a.zone == "sky" and b.zone == "ground":
        return f"above {noun_phrase(b, rng, definite=rng.random() < 0.4, adjective=0.1)}"
    if a.zone != "ground" or b.zone != "ground":
        return None
    target = noun_phrase(b, rng, definite=rng.random() < 0.25, adjective=0.2)
    overlap_x = a.cx > b.x0 and a.cx < b.x1
    if b.category == "tree" and a.category != "tree" and overlap_x and a.height < b.height * 0.8 and rng.random() < 0.6:
        return f"under {target}"
    if overlap_x and a.base - b.base > 15:
        return f"in front of {target}"
    if overlap_x and b.base - a.base > 15:
        return f"behind {target}"
    if rng.random() < 0.1:
        return f"to the {'left' if a.cx < b.cx else 'right'} of {target}"
    return f"{_pick(rng, ['next to', 'near', 'beside', 'by'], [0.5, 0.25, 0.15, 0.1])} {target}"


def _action(a: _Group, b: _Group, rng: np.random.Generator) -> str | None:
    """A verb phrase linking a person to an object ("flying a kite"), when the pair allows one."""
    if a.category != "person" or b.category not in ("kite", "dog", "umbrella", "bicycle", "bench", "horse"):
        return None
    obj = noun_phrase(b, rng, adjective=0.15)
    verbs = {
        "kite": ["flying", "with"],
        "dog": ["walking", "with", "playing with"],
        "umbrella": ["holding", "with"],
        "bicycle": ["with", "next to"],
        "bench": ["sitting on", "next to"],
        "horse": ["next to", "with"],
    }[b.category]
    return f"{_pick(rng, verbs)} {obj}"


def _clause(a: _Group, rest: list[_Group], rng: np.random.Generator, used: set[str]) -> str:
    """``a`` with an optional participle and a relation to one of ``rest`` (marked used)."""
    words = noun_phrase(a, rng)
    for b in rest:
        if b.category not in used:
            act = _action(a, b, rng)
            if act is not None and rng.random() < 0.7:
                used.add(b.category)
                return f"{words} {act}"
    if a.category in PARTICIPLES and rng.random() < 0.4:
        words += " " + _pick(rng, PARTICIPLES[a.category])
    cands = [b for b in rest if b.category not in used and b.zone in ("surface", "ground", "backdrop")]
    if a.zone == "sky":
        if rng.random() < 0.75:
            return words + " in the sky"
        cands = [b for b in rest if b.category not in used and b.zone == "ground"]
    if cands and rng.random() < 0.8:
        surf = [b for b in cands if b.zone == "surface"]
        b = surf[0] if surf and rng.random() < 0.6 else _pick(rng, cands)
        rel = _relation(a, b, rng)
        if rel is not None:
            used.add(b.category)
            return f"{words} {rel}"
    return words


def _tail(g: _Group, rng: np.random.Generator, rest: list[_Group], used: set[str]) -> str:
    """A trailing phrase adding group ``g`` to the caption ("with" at most once per caption)."""
    text = _tail_text(g, rng, rest, used)
    if text.startswith("with "):
        if "with" in used:
            text = "and " + text[5:]
        used.add("with")
    return text


def _tail_text(g: _Group, rng: np.random.Generator, rest: list[_Group], used: set[str]) -> str:
    if g.zone == "sky":
        np_ = noun_phrase(g, rng)
        verb = ""
        if g.category in PARTICIPLES and rng.random() < 0.35:
            verb = " " + _pick(rng, PARTICIPLES[g.category])
        if g.category == "sun" and rng.random() < 0.2:
            return f"and {noun_phrase(g, rng, definite=True)} is shining"
        joiner = _pick(rng, ["with", "and", ","], [0.45, 0.4, 0.15])
        where = _pick(rng, [" in the sky", " above", ""], [0.7, 0.1, 0.2])
        return f"{joiner} {np_}{verb}{where}"
    if g.zone == "backdrop":
        np_ = noun_phrase(g, rng, adjective=0.3)
        return _pick(rng, [f"with {np_} in the background", f"and {np_} in the background", f"and {np_} behind"],
                     [0.5, 0.3, 0.2])
    if g.zone == "surface":
        np_ = noun_phrase(g, rng, adjective=0.2)
        return f"{_pick(rng, ['with', 'and', 'near'], [0.4, 0.4, 0.2])} {np_}"
    clause = _clause(g, rest, rng, used)
    return f"{_pick(rng, ['and', 'with', ','], [0.55, 0.3, 0.15])} {clause}"


def make_caption(objects: Sequence[PlacedObject], horizon: float, rng: np.random.Generator) -> str:
    """A natural caption for a scene's objects (``horizon`` is the y of the horizon, for future use)."""
    del horizon
    by_cat: dict[str, list[PlacedObject]] = {}
    for o in objects:
        by_cat.setdefault(o.category, []).append(o)
    groups = [_Group(c, objs, rng) for c, objs in by_cat.items()]
    mentioned = [g for g in groups if rng.random() < MENTION[g.zone]]
    if not mentioned:
        mentioned = [max(groups, key=lambda g: PRIORITY[g.category])]
    weights = [PRIORITY[g.category] ** 2 for g in mentioned]
    subject = _pick(rng, mentioned, weights)
    others = [g for g in mentioned if g is not subject]
    rng.shuffle(others)  # type: ignore[arg-type]
    # sky and background things tend to come last
    others.sort(key=lambda g: {"ground": 0, "surface": 1, "sky": 2, "backdrop": 2}[g.zone] + rng.random() * 1.5)
    used: set[str] = {subject.category}
    parts = [_clause(subject, others, rng, used)]
    for g in others:
        if g.category in used:
            continue
        used.add(g.category)
        parts.append(_tail(g, rng, others, used))
    text = " ".join(parts).replace(" ,", ",")
    r = rng.random()
    if r < 0.28:
        text = _pick(rng, LEADS) + text
    elif r < 0.38:
        first = parts[0].split(" ")[0]
        verb = "are" if first in NUMBERS.values() or first in ("some", "several") or subject.plural else "is"
        text = f"there {verb} {text}"
    text = " ".join(text.split())
    if rng.random() < 0.3:
        text = text[0].upper() + text[1:] + "."
    return text


def object_caption(category: str, rng: np.random.Generator) -> str:
    """A short caption for an isolated object drawing ("a sketch of a house")."""
    noun = NOUNS[category][0][0]
    return f"{_pick(rng, ['a sketch of', 'a drawing of', ''])} {_article(noun)} {noun}".strip()
