"""Object categories from a sketch caption (SPEC §5), offline.

``parse_categories("two trees and a house under the clouds") == ["tree", "house", "cloud"]``

Pipeline: NLTK word tokenisation (needs no data) -> part-of-speech tags -> a few corrections of tagger
mistakes that matter for scene captions -> NLTK ``RegexpParser`` noun-phrase chunks -> one category per
phrase: the head noun (the last noun of the phrase), singular, lower case.

Backends, chosen once per process by :func:`default_parser` and reported with one ``logging.info`` line:

- tagger: NLTK's averaged perceptron when its data (``averaged_perceptron_tagger_eng``) is installed,
  otherwise textblob's ``PatternTagger`` (its English lexicon ships inside the textblob wheel);
- singular form: an irregular-plural table first, then WordNet (NLTK ``wordnet`` data) for plural-tagged
  nouns when it is installed, otherwise the rule-based :func:`singularize` of this module.

Nothing is ever downloaded. Asking explicitly for ``backend="nltk"`` without the data raises
:class:`~sketchseg.errors.DataError` naming the packages to install.

Choices (where the paper is silent):

- every noun phrase is kept, in caption order, deduplicated (first occurrence wins), so the output is
  deterministic; ``max_categories`` keeps the first N;
- adjectives are dropped unless ``keep_adjectives`` ("small house"); determiners, numbers, quantity words
  ("a lot of", "a couple of") and non-object nouns (:data:`DEFAULT_STOPLIST`: picture, scene, side, ...)
  are dropped;
- multi-word object names of :data:`DEFAULT_COMPOUNDS` ("teddy bear", "stop sign") stay whole, because
  their head noun alone names another object ("bear", "sign");
- an empty caption, or one without nouns, gives ``[]``; a caption that is not a ``str`` raises
  ``TypeError``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import nltk

from sketchseg.errors import DataError

log = logging.getLogger(__name__)

Tagged = list[tuple[str, str]]

# Nouns that name no drawable object: layout words, quantity words, the drawing itself, pronoun-like nouns.
DEFAULT_STOPLIST: tuple[str, ...] = (
    # the drawing itself
    "picture", "sketch", "image", "drawing", "photo", "photograph", "scene", "background", "foreground",
    "view", "art", "artwork", "doodle", "outline", "shape", "stroke",
    # layout and position
    "side", "front", "back", "top", "bottom", "middle", "center", "centre", "left", "right", "corner", "edge",
    "distance", "area", "place", "part", "section", "half", "end", "direction", "position", "way",
    # quantities and collections
    "lot", "lots", "couple", "group", "pair", "bunch", "number", "kind", "type", "sort", "piece", "set",
    "row", "line", "herd", "flock", "crowd", "pack", "variety", "amount", "plenty", "bit", "rest", "few",
    # time and other abstract nouns
    "day", "night", "time", "moment", "while", "air",
    # pronoun-like nouns
    "something", "someone", "somebody", "anyone", "anything", "everyone", "everything", "nothing",
    "nobody", "one", "thing", "other",
)  # fmt: skip

# Adjectives never kept by ``keep_adjectives`` (quantity, order and position words).
ADJECTIVE_STOPLIST: tuple[str, ...] = (
    "many", "several", "few", "other", "various", "same", "different", "next", "such", "own", "certain",
    "numerous", "more", "most", "much", "first", "second", "third", "last", "only", "whole", "entire",
    "main", "top", "bottom", "left", "right", "far", "upper", "lower", "front", "middle", "multiple",
)  # fmt: skip

# Multi-word object names kept whole (singular form); the MS-COCO ones whose head alone means another thing.
DEFAULT_COMPOUNDS: tuple[str, ...] = (
    "teddy bear", "hot dog", "stop sign", "traffic light", "fire hydrant", "parking meter",
    "tennis racket", "baseball bat", "baseball glove", "wine glass", "cell phone", "dining table",
    "potted plant", "sports ball", "hair drier", "hair dryer",
)  # fmt: skip

# Irregular plurals (exact words). Compounds ending in "-men" are handled by rule.
IRREGULAR_PLURALS: dict[str, str] = {
    "people": "person", "children": "child", "men": "man", "women": "woman", "mice": "mouse",
    "geese": "goose", "teeth": "tooth", "feet": "foot", "oxen": "ox", "lice": "louse", "dice": "die",
    "leaves": "leaf", "knives": "knife", "wives": "wife", "lives": "life", "wolves": "wolf", "halves": "half",
    "calves": "calf", "shelves": "shelf", "loaves": "loaf", "thieves": "thief", "scarves": "scarf",
    "hooves": "hoof", "elves": "elf", "selves": "self", "dwarves": "dwarf", "wharves": "wharf",
    "sheaves": "sheaf", "cacti": "cactus", "fungi": "fungus", "octopi": "octopus", "bacteria": "bacterium",
    "buses": "bus", "busses": "bus", "cactuses": "cactus", "octopuses": "octopus", "walruses": "walrus",
    "circuses": "circus", "viruses": "virus", "campuses": "campus", "bonuses": "bonus", "platypuses": "platypus",
    "hippopotamuses": "hippopotamus", "irises": "iris", "lenses": "lens", "gases": "gas", "atlases": "atlas",
    "canvases": "canvas", "axes": "axe", "quizzes": "quiz", "cookies": "cookie", "movies": "movie",
    "zombies": "zombie", "brownies": "brownie", "hoodies": "hoodie", "calories": "calorie",
    "goalies": "goalie", "rookies": "rookie", "selfies": "selfie", "mustaches": "mustache",
    "moustaches": "moustache", "niches": "niche", "headaches": "headache", "avalanches": "avalanche",
    "potatoes": "potato", "tomatoes": "tomato", "heroes": "hero", "volcanoes": "volcano",
    "mosquitoes": "mosquito", "mangoes": "mango", "buffaloes": "buffalo", "dominoes": "domino",
    "tornadoes": "tornado", "torpedoes": "torpedo", "echoes": "echo", "emus": "emu", "gnus": "gnu",
    "menus": "menu", "tofus": "tofu", "kangaroos": "kangaroo",
}  # fmt: skip

# Words that are the same in singular and plural, and singular words ending in "s".
INVARIANT_NOUNS: frozenset[str] = frozenset(
    """sheep deer fish moose bison series species aircraft salmon trout swine offspring
    grass bus glass cross dress gas lens canvas iris cactus octopus walrus circus compass mattress tennis chess
    news atlas bonus campus virus plus chaos bias bass boss moss class mass press princess lioness actress
    hippopotamus platypus asparagus hibiscus citrus abacus census octopus crocus status apparatus
    scissors pants trousers jeans shorts pajamas pyjamas clothes stairs binoculars tongs pliers goggles
    physics mathematics gymnastics athletics aerobics measles diabetes
    omen semen specimen abdomen""".split()
)

# Nouns ending in "-ing" (anything else ending in "-ing" and tagged as a noun is re-tagged as a gerund).
ING_NOUNS: frozenset[str] = frozenset(
    """building ceiling ring king wing string swing thing sibling evening morning spring sling railing awning
    painting clothing wedding landing crossing earring pudding dumpling duckling seedling sapling darling
    lightning icing frosting stuffing filling topping lining herring viking stocking bedding housing siding
    ping sing""".split()
)

# Tokens after which a verb tag is implausible: the tagger mislabelled a noun.
_NOUN_OPENERS = frozenset("a an the his her their its my your our this these those".split())
_SPATIAL_PREPOSITIONS = frozenset(
    """with near on in under over beside behind from of at by between across through into onto above below
    along around against among inside outside beyond toward towards without beneath underneath upon""".split()
)
_AUXILIARIES = frozenset(
    """be is are was were been being am 's 're 'm have has had having do does did can could will would
    shall should may might must""".split()
)

_GRAMMAR = r"NP: {<JJ.*>*<NN.*>+}"
_WORD = re.compile(r"^[^\W\d_]{2,}(?:[-'][^\W\d_]+)*$")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_VERB_TAGS = frozenset({"VB", "VBP", "VBZ"})


def singularize(word: str) -> str:
    """The singular of an English noun (lower case), by rule; singular words come back unchanged.

    ``singularize("trees") == "tree"``, ``"people" -> "person"``, ``"grass" -> "grass"``,
    ``"ponies" -> "pony"``, ``"wolves" -> "wolf"``, ``"benches" -> "bench"``.
    """
    w = word.lower()
    if len(w) < 3 or w in INVARIANT_NOUNS:
        return w
    if w in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[w]
    if w.endswith("men") and len(w) > 5:  # policemen, snowmen, firemen
        return w[:-3] + "man"
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"  # ponies, skies, berries
    if w.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return w[:-2]  # glasses, brushes, benches, boxes, buzzes
    if w.endswith(("ss", "us", "is")):
        return w  # grass, cactus, tennis: already singular
    if w.endswith("s") and not w.endswith("'s"):
        return w[:-1]  # trees, horses, houses, giraffes, waves
    return w


@dataclass
class CaptionParser:
    """Caption -> categories with a fixed tagger and singular-form function (see the module docstring).

    ``tag`` maps a token list to ``(token, tag)`` pairs with Penn Treebank tags; ``lemmatize`` maps a
    lower-case plural-tagged noun to its singular (``None`` = rules only). ``backend`` is a name for logs.
    """

    tag: Callable[[list[str]], Sequence[tuple[str, str]]]
    lemmatize: Callable[[str], str] | None = None
    backend: str = "custom"
    stoplist: frozenset[str] = frozenset(DEFAULT_STOPLIST)
    compounds: frozenset[str] = frozenset(DEFAULT_COMPOUNDS)
    _chunker: nltk.RegexpParser = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoplist = frozenset(w.lower() for w in self.stoplist)
        self.compounds = frozenset(" ".join(c.lower().split()) for c in self.compounds)
        self._chunker = nltk.RegexpParser(_GRAMMAR)

    def singular(self, word: str, tag: str) -> str:
        """The singular lower-case form of a noun tagged ``tag``."""
        w = word.lower()
        if w in IRREGULAR_PLURALS or w in INVARIANT_NOUNS:
            return singularize(w)
        if self.lemmatize is not None and tag in ("NNS", "NNPS"):
            lemma = self.lemmatize(w)
            if lemma and lemma != w and _WORD.match(lemma):  # WordNet returns unknown words unchanged
                return lemma.lower()
        return singularize(w)

    def tagged(self, caption: str) -> Tagged:
        """Tokens of ``caption`` with corrected part-of-speech tags (compound object names merged)."""
        tokens = [
            "".join(token.split())
            for sentence in _SENTENCE_END.split(caption)  # no punkt data: split sentences by punctuation
            for token in nltk.word_tokenize(sentence, preserve_line=True)
        ]
        tokens = [t for t in tokens if t]
        if not tokens:
            return []
        tags = [(str(w), str(t)) for w, t in self.tag(tokens)]
        if len(tags) != len(tokens):  # the tagger re-split a token: tag one token at a time
            tags = [(tok, str(self.tag([tok])[0][1])) for tok in tokens]
        tags = [(tok, t) for tok, (_, t) in zip(tokens, tags, strict=True)]
        return _fix_tags(self._merge_compounds(tags))

    def categories(
        self, caption: str, *, max_categories: int | None = None, keep_adjectives: bool = False
    ) -> list[str]:
        """See :func:`parse_categories`."""
        _check_args(caption, max_categories)
        out: list[str] = []
        if max_categories == 0:
            return out
        tree = self._chunker.parse(self.tagged(caption)) if caption.strip() else None
        for phrase in tree.subtrees(lambda t: t.label() == "NP") if tree is not None else ():
            name = self._phrase_category(list(phrase.leaves()), keep_adjectives)
            if name is not None and name not in out:
                out.append(name)
                if max_categories is not None and len(out) >= max_categories:
                    break
        return out

    def _phrase_category(self, leaves: Tagged, keep_adjectives: bool) -> str | None:
        """The category named by one noun phrase (``[(word, tag), ...]``), or None."""
        head_word, head_tag = leaves[-1]
        head = self.singular(head_word, head_tag)
        if head not in self.compounds and (not _WORD.match(head) or head in self.stoplist):
            return None
        if head_word.lower() in self.stoplist:
            return None
        if not keep_adjectives:
            return head
        adjectives = [
            w
            for w, tag in ((word.lower(), tag) for word, tag in leaves[:-1])
            if tag.startswith("JJ") and _WORD.match(w) and w not in ADJECTIVE_STOPLIST
        ]
        return " ".join([*adjectives, head])

    def _merge_compounds(self, tags: Tagged) -> Tagged:
        """Merge two-word object names of ``compounds`` ("teddy bears", "teddy-bear") into one noun token
        holding the singular name, whatever the tagger said about the two words."""
        out: Tagged = []
        i = 0
        while i < len(tags):
            parts = tags[i][0].lower().split("-")
            width = 1
            if len(parts) != 2 and i + 1 < len(tags):
                parts, width = [parts[-1], tags[i + 1][0].lower()], 2
            name = f"{parts[0]} {singularize(parts[-1])}" if len(parts) == 2 else ""
            if name in self.compounds:
                out.append((name, "NN" if singularize(parts[-1]) == parts[-1] else "NNS"))
                i += width
            else:
                out.append(tags[i])
                i += 1
        return out


def _fix_tags(tags: Tagged) -> Tagged:
    """Correct tagger mistakes that change categories in scene captions.

    - a word ending in "-ing" tagged as a noun, not a known "-ing" noun, is a gerund ("kid flying kite");
    - a verb-tagged word after an article, possessive, number, adjective, gerund or spatial preposition is a
      noun ("a kite/VBP", "flying kite/VB", "with leaves/VBZ"), unless it is an auxiliary;
    - a plural-tagged noun right after a singular noun that follows "a/an", or before a determiner, is a
      verb ("a man surfs/NNS a wave").
    """
    out = [list(p) for p in tags]
    for word, item in zip((w.lower() for w, _ in tags), out, strict=True):
        if item[1].startswith("NN") and word.endswith("ing") and len(word) > 4 and word not in ING_NOUNS:
            item[1] = "VBG"
    for i, (word, tag) in enumerate(out):
        w = word.lower()
        if tag not in _VERB_TAGS or w in _AUXILIARIES or not _WORD.match(w) or i == 0:
            continue
        prev_word, prev_tag = out[i - 1][0].lower(), out[i - 1][1]
        if (
            prev_word in _NOUN_OPENERS
            or prev_word in _SPATIAL_PREPOSITIONS
            or prev_tag in ("CD", "PRP$", "POS", "VBG")
            or prev_tag.startswith("JJ")
        ):
            out[i][1] = "NNS" if singularize(w) != w else "NN"
    for i, (word, tag) in enumerate(out):
        if tag != "NNS" or i == 0 or out[i - 1][1] != "NN" or not word.lower().endswith("s"):
            continue
        before = out[i - 2][0].lower() if i >= 2 else ""
        after_tag = out[i + 1][1] if i + 1 < len(out) else ""
        after_word = out[i + 1][0].lower() if i + 1 < len(out) else ""
        if before in ("a", "an") or after_tag in ("DT", "PRP$") or after_word in _NOUN_OPENERS:
            out[i][1] = "VBZ"
    return [(w, t) for w, t in out]


def _check_args(caption: object, max_categories: int | None) -> None:
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a str, got {type(caption).__name__} ({caption!r:.60})")
    if max_categories is not None and (not isinstance(max_categories, int) or max_categories < 0):
        raise ValueError(f"max_categories must be None or an int >= 0, got {max_categories!r}")


# ---------------------------------------------------------------------------------------------------------
# Backends

_NLTK_TAGGER_RESOURCE = "taggers/averaged_perceptron_tagger_eng/"
_WORDNET_RESOURCE = "corpora/wordnet"
_INSTALL_HINT = (
    "install the NLTK data with network access: python -m nltk.downloader averaged_perceptron_tagger_eng wordnet "
    "(or use backend='auto', which falls back to the offline tagger)"
)


def _has_nltk_data(resource: str) -> bool:
    try:
        nltk.data.find(resource)
    except LookupError:
        return False
    except Exception as exc:  # noqa: BLE001 - a broken data path is the same as missing data here
        log.debug("nltk.data.find(%r) failed: %s", resource, exc)
        return False
    return True


def _nltk_tagger() -> Callable[[list[str]], Sequence[tuple[str, str]]]:
    from nltk.tag.perceptron import PerceptronTagger

    return PerceptronTagger().tag


def _pattern_tagger() -> Callable[[list[str]], Sequence[tuple[str, str]]]:
    from textblob.en.taggers import PatternTagger

    tagger = PatternTagger()

    def tag(tokens: list[str]) -> Sequence[tuple[str, str]]:
        # tokens carry no whitespace, so tokenize=False splits exactly at our token boundaries
        return tagger.tag(" ".join(tokens), tokenize=False)

    return tag


def _wordnet_lemmatizer() -> Callable[[str], str]:
    from nltk.corpus import wordnet
    from nltk.stem import WordNetLemmatizer

    wordnet.ensure_loaded()
    lemmatizer = WordNetLemmatizer()
    return lambda word: lemmatizer.lemmatize(word, "n")


def make_parser(
    backend: str = "auto",
    *,
    stoplist: Iterable[str] = DEFAULT_STOPLIST,
    compounds: Iterable[str] = DEFAULT_COMPOUNDS,
) -> CaptionParser:
    """Build a parser. ``backend``: ``"auto"`` (NLTK data when installed, else offline), ``"nltk"``
    (NLTK tagger + WordNet, :class:`DataError` when their data is missing) or ``"offline"``
    (textblob's PatternTagger + rule-based singulariser). Never downloads anything."""
    if backend not in ("auto", "nltk", "offline"):
        raise ValueError(f"unknown caption parser backend {backend!r}; use 'auto', 'nltk' or 'offline'")
    tagger, tagger_name = None, "pattern"
    lemmatize, lemma_name = None, "rules"
    if backend in ("auto", "nltk"):
        missing = [r for r in (_NLTK_TAGGER_RESOURCE, _WORDNET_RESOURCE) if not _has_nltk_data(r)]
        if backend == "nltk" and missing:
            raise DataError(f"NLTK data not found: {', '.join(missing)}; {_INSTALL_HINT}")
        if _NLTK_TAGGER_RESOURCE not in missing:
            try:
                tagger, tagger_name = _nltk_tagger(), "nltk-perceptron"
            except Exception as exc:  # noqa: BLE001 - unreadable data: fall back, say why
                if backend == "nltk":
                    raise DataError(f"NLTK tagger data is unreadable ({exc}); {_INSTALL_HINT}") from exc
                log.warning("NLTK tagger data unusable (%s); using the offline tagger", exc)
        if _WORDNET_RESOURCE not in missing:
            try:
                lemmatize, lemma_name = _wordnet_lemmatizer(), "wordnet"
            except Exception as exc:  # noqa: BLE001
                if backend == "nltk":
                    raise DataError(f"NLTK WordNet data is unreadable ({exc}); {_INSTALL_HINT}") from exc
                log.warning("NLTK WordNet data unusable (%s); using the rule-based singulariser", exc)
    if tagger is None:
        tagger = _pattern_tagger()
    return CaptionParser(
        tag=tagger,
        lemmatize=lemmatize,
        backend=f"{tagger_name}+{lemma_name}",
        stoplist=frozenset(stoplist),
        compounds=frozenset(compounds),
    )


@functools.lru_cache(maxsize=1)
def default_parser() -> CaptionParser:
    """The process-wide parser (built once, backend chosen automatically and logged once)."""
    parser = make_parser("auto")
    detail = "" if parser.backend.startswith("nltk") else " (NLTK tagger/WordNet data not installed: offline path)"
    log.info("caption parser backend: %s%s", parser.backend, detail)
    return parser


def parser_backend() -> str:
    """Name of the active backend: ``"<tagger>+<singular form>"``, e.g. ``"pattern+rules"`` offline or
    ``"nltk-perceptron+wordnet"`` with NLTK data installed."""
    return default_parser().backend


def parse_categories(
    caption: str,
    *,
    max_categories: int | None = None,
    keep_adjectives: bool = False,
    parser: CaptionParser | None = None,
) -> list[str]:
    """Object categories named in ``caption``: one per noun phrase, head noun, singular, lower case, in
    caption order, deduplicated, at most ``max_categories`` (None = all).

    ``"A man is riding a horse on the beach."`` -> ``["man", "horse", "beach"]``;
    ``keep_adjectives=True``: ``"a small house"`` -> ``["small house"]``. An empty caption or one without
    nouns gives ``[]``. Raises ``TypeError`` when ``caption`` is not a ``str`` (e.g. ``None``) and
    ``ValueError`` for a negative ``max_categories``. ``parser`` defaults to :func:`default_parser`.
    """
    _check_args(caption, max_categories)
    return (parser or default_parser()).categories(
        caption, max_categories=max_categories, keep_adjectives=keep_adjectives
    )
