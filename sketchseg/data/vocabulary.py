"""Category names: their one normal form, and the vocabularies of known object names (SPEC §5).

``normalise_name("Palm  Trees") == "palm tree"``, ``normalise_name("teddy-bear") == "teddy bear"``,
``normalise_name("grapes") == normalise_name("grape") == "grape"``.

Every place where names from different sources meet (parsed caption categories, ``all_classes.json``,
stroke labels, seen/unseen statistics, per-category metrics, the synthetic generator's nouns) compares
``normalise_name`` of both sides; this module is the only definition of that form.

Normal form: lower case; ``-`` and ``_`` read as spaces; whitespace collapsed; the last word singular.
Singular forms come from ``lemminflect`` (``getLemma(word, upos="NOUN")``, its data ships in the wheel),
so invariant and irregular nouns survive: rhinoceros, sheep, grass, bus, octopus, cactus stay; buses -> bus,
geese -> goose, children -> child, cacti -> cactus. Where lemminflect offers several lemmas the first is
taken (glasses -> glass, as in COCO's "wine glass"; trousers -> trouser, like pants -> pant, its only
answer; dice -> die; axes -> axe; cookies -> cookie), except for :data:`LEMMA_OVERRIDES`. The normal form
is for comparing names; names shown to users and to the text encoder keep a vocabulary's spelling
("grapes", "pants", "headphones" in QuickDraw's list).

Known vocabularies: COCO's 80 object names (shipped by torchvision), QuickDraw's 345 (package data
``vocab/quickdraw_345.txt``) and, first, a dataset's own ``all_classes.json`` names.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import lemminflect

from sketchseg.errors import DataError

# Words whose lemminflect lemma is not the singular a scene caption means (the only hand-written entries):
# - "people": lemminflect keeps it (a people, a nation); in captions it is the plural of "person", COCO's class;
# - "leaves": lemminflect's first answer is "leave" (permission), its second "leaf"; sketches show leaves.
LEMMA_OVERRIDES: Mapping[str, str] = {"people": "person", "leaves": "leaf"}

_SEPARATORS = re.compile(r"[-_\s]+")
_LETTERS = re.compile(r"^[^\W\d_]+(?:'[^\W\d_]+)?$")
_QUICKDRAW_FILE = "quickdraw_345.txt"


@functools.lru_cache(maxsize=1 << 16)
def singular(word: str) -> str:
    """The singular of one lower-case English noun (lemminflect, :data:`LEMMA_OVERRIDES` first).

    ``singular("buses") == "bus"``, ``singular("rhinoceros") == "rhinoceros"``, ``singular("people") ==
    "person"``. Words that are not purely alphabetic (numbers, ``"x2"``) come back unchanged.
    """
    if word in LEMMA_OVERRIDES:
        return LEMMA_OVERRIDES[word]
    if len(word) < 3 or not _LETTERS.match(word):
        return word
    lemmas = lemminflect.getLemma(word, upos="NOUN")
    return lemmas[0].lower() if lemmas and lemmas[0] else word


def normalise_name(name: str) -> str:
    """The normal form of a category name or parsed phrase (see the module docstring)."""
    words = _SEPARATORS.split(name.lower().strip())
    words = [w for w in words if w]
    if not words:
        return ""
    return " ".join([*words[:-1], singular(words[-1])])


@dataclass(frozen=True)
class Vocabulary:
    """Known category names by normal form; the first source that lists a normal form gives its spelling."""

    spelling: Mapping[str, str]  # normal form -> name as shown
    max_words: int  # words of the longest name (normal form)
    first_words: frozenset[str]  # first word of every name of two or more words

    @classmethod
    def build(cls, *sources: Iterable[str]) -> Vocabulary:
        """A vocabulary of ``sources`` in precedence order. Names starting with "the " are also known
        without it ("The Eiffel Tower" matches "eiffel tower")."""
        spelling: dict[str, str] = {}
        for source in sources:
            for raw in source:
                shown = " ".join(raw.split())
                normal = normalise_name(shown)
                if not normal:
                    continue
                spelling.setdefault(normal, shown)
                if normal.startswith("the ") and len(normal.split()) > 2:
                    spelling.setdefault(normal[4:], shown)
        multi = [n.split() for n in spelling if " " in n]
        return cls(
            spelling=spelling,
            max_words=max((len(n.split()) for n in spelling), default=0),
            first_words=frozenset(words[0] for words in multi),
        )

    def get(self, normal: str) -> str | None:
        """The spelling of the known name whose normal form is ``normal``, or None."""
        return self.spelling.get(normal)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalise_name(name) in self.spelling

    def __len__(self) -> int:
        return len(self.spelling)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self.spelling.values()))


@functools.cache
def coco_names() -> tuple[str, ...]:
    """COCO's 80 object names, as torchvision ships them (``torchvision.models._meta._COCO_CATEGORIES``, its
    "N/A" placeholders and "__background__" dropped).

    ``_meta.py`` is plain data without imports: when torchvision is not imported yet, that one file is
    loaded alone, so that parsing captions does not import torch and torchvision (seconds per process).
    """
    module = sys.modules.get("torchvision.models._meta")
    where = "torchvision.models._meta"
    if module is None:
        spec = importlib.util.find_spec("torchvision")  # locates the package without importing it
        path = Path(spec.origin).parent / "models" / "_meta.py" if spec is not None and spec.origin else None
        if path is None or not path.is_file():
            raise DataError(
                f"COCO's category names are read from {where} ({path or 'torchvision not installed'}); "
                "install the torchvision version of requirements.lock"
            )
        where = str(path)
        meta_spec = importlib.util.spec_from_file_location("_sketchseg_torchvision_meta", path)
        module = importlib.util.module_from_spec(meta_spec)
        meta_spec.loader.exec_module(module)  # type: ignore[union-attr]
    names = getattr(module, "_COCO_CATEGORIES", None)
    if not isinstance(names, list):
        raise DataError(f"{where} has no _COCO_CATEGORIES list; install the torchvision version of requirements.lock")
    return tuple(c for c in names if c not in ("N/A", "__background__"))


@functools.cache
def quickdraw_names() -> tuple[str, ...]:
    """QuickDraw's 345 class names (package data ``sketchseg/data/vocab/quickdraw_345.txt``)."""
    path = resources.files("sketchseg.data") / "vocab" / _QUICKDRAW_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: QuickDraw class list missing ({exc}); reinstall sketchseg") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@functools.lru_cache(maxsize=8)
def _known(extra: tuple[str, ...]) -> Vocabulary:
    lowered = [n.lower() for n in (*coco_names(), *quickdraw_names())]
    return Vocabulary.build(extra, lowered)


def known_vocabulary(extra: Iterable[str] = ()) -> Vocabulary:
    """The vocabulary of ``extra`` (a dataset's own names, spelled as given, first), then COCO's and
    QuickDraw's names (lower case)."""
    return _known(tuple(extra))
