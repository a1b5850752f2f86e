"""Object categories from a sketch caption (SPEC §5), offline.

``parse_categories("an alarm clock next to two palm trees") == ["alarm clock", "palm tree"]``

Pipeline: NLTK word tokenisation (needs no data) -> part-of-speech tags -> known multi-word object names
merged into one noun token, whatever their words were tagged -> a few corrections of tagger mistakes that
matter for scene captions -> NLTK ``RegexpParser`` noun-phrase chunks -> one category per phrase:

1. the longest known multi-word name the phrase contains ("hot air balloon", "fire hydrant", "teddy bear"):
   a dataset's own ``all_classes.json`` names (``extra_vocabulary``), COCO's 80 and QuickDraw's 345
   (:mod:`sketchseg.data.vocabulary`), spelled as the first of these lists spells it;
2. otherwise the phrase's final run of nouns ("palm tree", "ice cream", "coral") in its normal form
   (:func:`~sketchseg.data.vocabulary.normalise_name`: lower case, singular from lemminflect), or the known
   name with that normal form ("grapes" when the class list says "grapes").

Backends, chosen once per process by :func:`default_parser` and reported with one ``logging.info`` line:
the tagger is NLTK's averaged perceptron when its data (``averaged_perceptron_tagger_eng``) is installed,
otherwise textblob's ``PatternTagger`` (its English lexicon ships inside the textblob wheel). Singular
forms always come from lemminflect, so both backends and every name comparison share one normal form.
Nothing is ever downloaded; asking explicitly for ``backend="nltk"`` without the data raises
:class:`~sketchseg.errors.DataError` naming the package to install.

Choices (where the paper is silent):

- every noun phrase is kept, in caption order, deduplicated (first occurrence wins), so the output is
  deterministic; ``max_categories`` keeps the first N;
- adjectives are dropped unless ``keep_adjectives`` ("small house"); determiners, numbers, quantity words
  ("a lot of", "a couple of") and non-object nouns (:data:`DEFAULT_STOPLIST`: picture, scene, side, ...)
  are dropped, also inside a run of nouns ("background trees" -> "tree");
- an empty caption, or one without nouns, gives ``[]``; a caption that is not a ``str`` raises
  ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import nltk

from sketchseg.data.vocabulary import Vocabulary, known_vocabulary, normalise_name, singular
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

# Adjectives never kept by ``keep_adjectives`` (quantity, order and position words) and never read as nouns.
ADJECTIVE_STOPLIST: tuple[str, ...] = (
    "many", "several", "few", "other", "various", "same", "different", "next", "such", "own", "certain",
    "numerous", "more", "most", "much", "first", "second", "third", "last", "only", "whole", "entire",
    "main", "top", "bottom", "left", "right", "far", "upper", "lower", "front", "middle", "multiple",
)  # fmt: skip

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

KNOWN_TAG = "NNKNOWN"  # tag of a merged known multi-word name (matches the chunker's <NN.*>)
_GRAMMAR = r"NP: {<JJ.*>*<NN.*>+}"
_WORD = re.compile(r"^[^\W\d_]{2,}(?:[-'][^\W\d_]+)*$")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_SPLIT_WORDS = re.compile(r"[-_]")
_VERB_TAGS = frozenset({"VB", "VBP", "VBZ"})
_PAST_TAGS = frozenset({"VBD", "VBN"})  # "a saw/VBD": a noun only right after a determiner or number
_PHRASE_CONTINUES = ("JJ", "NN", "CD", "VBG", "POS")  # tag prefixes that can follow an adjective inside a phrase


@dataclass
class CaptionParser:
    """Caption -> categories with a fixed tagger and vocabulary (see the module docstring).

    ``tag`` maps a token list to ``(token, tag)`` pairs with Penn Treebank tags; ``vocabulary`` holds the
    known names (default: COCO and QuickDraw); ``backend`` is a name for logs and shard indexes.
    """

    tag: Callable[[list[str]], Sequence[tuple[str, str]]]
    backend: str = "custom"
    stoplist: frozenset[str] = frozenset(DEFAULT_STOPLIST)
    vocabulary: Vocabulary = field(default_factory=known_vocabulary)
    _chunker: nltk.RegexpParser = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoplist = frozenset(w.lower() for w in self.stoplist)
        self._chunker = nltk.RegexpParser(_GRAMMAR)

    def with_vocabulary(self, extra: Iterable[str]) -> CaptionParser:
        """The same parser with ``extra`` names (a dataset's ``all_classes.json``) known first."""
        return dataclasses.replace(self, vocabulary=known_vocabulary(extra))

    def tagged(self, caption: str) -> Tagged:
        """Tokens of ``caption`` with corrected part-of-speech tags (known multi-word names merged)."""
        tokens = [
            "".join(token.split())
            for sentence in _SENTENCE_END.split(caption)  # no punkt data: split sentences by punctuation
            for token in nltk.word_tokenize(sentence, preserve_line=True)
        ]
        tokens = [t for t in tokens if t]
        if not tokens:
            return []
        lowered = [t.lower() for t in tokens]  # capitals start sentences ("Tiny elephants"), not names
        tags = [(str(w), str(t)) for w, t in self.tag(lowered)]
        if len(tags) != len(tokens):  # the tagger re-split a token: tag one token at a time
            tags = [(tok, str(self.tag([tok])[0][1])) for tok in lowered]
        tags = [(tok, t) for tok, (_, t) in zip(tokens, tags, strict=True)]
        return _fix_tags(self._merge_known(tags))

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
        """The category named by one noun phrase (``[(word, tag), ...]``, adjectives then nouns), or None."""
        start = len(leaves)
        while start > 0 and leaves[start - 1][1].startswith("NN"):
            start -= 1
        nouns = leaves[start:]
        known = [w for w, tag in nouns if tag == KNOWN_TAG]
        if known:  # the longest known name; of equally long ones the last (the head)
            name = max(reversed(known), key=lambda w: len(normalise_name(w).split()))
        else:
            words = [w.lower() for w, _ in nouns]
            head = words[-1]
            if not _WORD.match(head) or head in self.stoplist or normalise_name(head) in self.stoplist:
                return None
            normal = normalise_name(" ".join(w for w in words if _WORD.match(w) and w not in self.stoplist))
            name = self.vocabulary.get(normal) or normal
        if not keep_adjectives:
            return name
        adjectives = [
            w
            for w, tag in ((word.lower(), tag) for word, tag in leaves[:start])
            if tag.startswith("JJ") and _WORD.match(w) and w not in ADJECTIVE_STOPLIST
        ]
        return " ".join([*adjectives, name])

    def _merge_known(self, tags: Tagged) -> Tagged:
        """Merge the longest known multi-word names ("hot air balloons", "teddy-bear") into one token holding
        the name as the vocabulary spells it, tagged :data:`KNOWN_TAG` whatever the tagger said."""
        vocab = self.vocabulary
        out: Tagged = []
        i = 0
        while i < len(tags):
            match = None
            if _SPLIT_WORDS.split(tags[i][0].lower(), maxsplit=1)[0] in vocab.first_words:
                for j in range(min(len(tags), i + vocab.max_words), i, -1):  # longest first
                    normal = normalise_name(" ".join(w for w, _ in tags[i:j]))
                    name = vocab.get(normal) if " " in normal else None
                    if name is not None:
                        match = (j, name)
                        break
            if match is None:
                out.append(tags[i])
                i += 1
            else:
                out.append((match[1], KNOWN_TAG))
                i = match[0]
        return out


def _opens_phrase(out: list[list[str]], i: int) -> bool:
    """Whether token ``i`` follows a determiner, possessive or number, possibly across adjectives."""
    k = i - 1
    while k >= 0 and out[k][1].startswith("JJ"):
        k -= 1
    return k >= 0 and (out[k][0].lower() in _NOUN_OPENERS or out[k][1] in ("CD", "PRP$", "POS"))


def _fix_tags(tags: Tagged) -> Tagged:
    """Correct tagger mistakes that change categories in scene captions.

    - a word ending in "-ing" tagged as a noun, not a known "-ing" noun, is a gerund ("kid flying kite");
    - a verb-tagged word after an article, possessive, number, adjective, gerund or spatial preposition is a
      noun ("a kite/VBP", "flying kite/VB", "with leaves/VBZ"), unless it is an auxiliary; a past-tense
      or participle tag right after a determiner or number too ("a saw/VBD");
    - an adjective-tagged word that ends a phrase opened by a determiner is a noun ("a coral/JJ ,",
      "a key/JJ and a saw"), unless more of the phrase follows ("a red and white bus") or it is a
      quantity or position word (:data:`ADJECTIVE_STOPLIST`);
    - a plural-tagged noun right after a singular noun that follows "a/an", or before a determiner, is a
      verb ("a man surfs/NNS a wave").
    """
    out = [list(p) for p in tags]
    for word, item in zip((w.lower() for w, _ in tags), out, strict=True):
        if item[1] in ("NN", "NNS", "NNP", "NNPS") and word.endswith("ing") and len(word) > 4 and word not in ING_NOUNS:
            item[1] = "VBG"
    for i, (word, tag) in enumerate(out):
        w = word.lower()
        if tag not in _VERB_TAGS | _PAST_TAGS or w in _AUXILIARIES or not _WORD.match(w) or i == 0:
            continue
        prev_word, prev_tag = out[i - 1][0].lower(), out[i - 1][1]
        after_opener = prev_word in _NOUN_OPENERS or prev_tag in ("CD", "PRP$", "POS")
        if after_opener or (
            tag in _VERB_TAGS and (prev_word in _SPATIAL_PREPOSITIONS or prev_tag == "VBG" or prev_tag.startswith("JJ"))
        ):
            out[i][1] = "NNS" if singular(w) != w else "NN"
    for i, (word, tag) in enumerate(out):
        w = word.lower()
        if not tag.startswith("JJ") or w in ADJECTIVE_STOPLIST or not _WORD.match(w) or not _opens_phrase(out, i):
            continue
        after = [t for _, t in out[i + 1 : i + 3]]
        continues = bool(after) and after[0].startswith(_PHRASE_CONTINUES)
        coordinated = len(after) == 2 and after[0] in ("CC", ",") and after[1].startswith(("JJ", "NN"))
        if not continues and not coordinated:
            out[i][1] = "NNS" if singular(w) != w else "NN"
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

NLTK_TAGGER_RESOURCE = "taggers/averaged_perceptron_tagger_eng/"
INSTALL_HINT = (
    "install the NLTK tagger data with network access: python -m nltk.downloader averaged_perceptron_tagger_eng "
    "(or use backend='auto', which falls back to the offline tagger)"
)


def has_nltk_data(resource: str = NLTK_TAGGER_RESOURCE) -> bool:
    """Whether NLTK finds ``resource`` (default: the perceptron tagger's data) without downloading."""
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


def make_parser(
    backend: str = "auto",
    *,
    stoplist: Iterable[str] = DEFAULT_STOPLIST,
    extra_vocabulary: Iterable[str] = (),
) -> CaptionParser:
    """Build a parser. ``backend``: ``"auto"`` (NLTK's tagger when its data is installed, else offline),
    ``"nltk"`` (:class:`DataError` when its data is missing) or ``"offline"`` (textblob's PatternTagger).
    ``extra_vocabulary``: a dataset's own category names, known before COCO's and QuickDraw's.
    Never downloads anything."""
    if backend not in ("auto", "nltk", "offline"):
        raise ValueError(f"unknown caption parser backend {backend!r}; use 'auto', 'nltk' or 'offline'")
    tagger, tagger_name = None, "pattern"
    if backend in ("auto", "nltk"):
        if has_nltk_data():
            try:
                tagger, tagger_name = _nltk_tagger(), "nltk-perceptron"
            except Exception as exc:  # noqa: BLE001 - unreadable data: fall back, say why
                if backend == "nltk":
                    raise DataError(f"NLTK tagger data is unreadable ({exc}); {INSTALL_HINT}") from exc
                log.warning("NLTK tagger data unusable (%s); using the offline tagger", exc)
        elif backend == "nltk":
            raise DataError(f"NLTK data not found: {NLTK_TAGGER_RESOURCE}; {INSTALL_HINT}")
    if tagger is None:
        tagger = _pattern_tagger()
    return CaptionParser(
        tag=tagger,
        backend=f"{tagger_name}+lemminflect",
        stoplist=frozenset(stoplist),
        vocabulary=known_vocabulary(extra_vocabulary),
    )


@functools.lru_cache(maxsize=1)
def default_parser() -> CaptionParser:
    """The process-wide parser (built once, backend chosen automatically and logged once)."""
    parser = make_parser("auto")
    detail = "" if parser.backend.startswith("nltk") else " (NLTK tagger data not installed: offline path)"
    log.info("caption parser backend: %s%s", parser.backend, detail)
    return parser


@functools.lru_cache(maxsize=4)
def _dataset_parser(classes: tuple[str, ...]) -> CaptionParser:
    return default_parser().with_vocabulary(classes)


def dataset_parser(classes: Iterable[str] = ()) -> CaptionParser:
    """The process-wide parser with a dataset's ``all_classes.json`` names known first (cached)."""
    classes = tuple(classes)
    return _dataset_parser(classes) if classes else default_parser()


def parse_categories(
    caption: str,
    *,
    max_categories: int | None = None,
    keep_adjectives: bool = False,
    parser: CaptionParser | None = None,
) -> list[str]:
    """Object categories named in ``caption``: one per noun phrase (see the module docstring), in caption
    order, deduplicated, at most ``max_categories`` (None = all).

    ``"A man is riding a horse on the beach."`` -> ``["man", "horse", "beach"]``; ``"a hot air balloon over
    palm trees"`` -> ``["hot air balloon", "palm tree"]``; ``keep_adjectives=True``: ``"a small house"`` ->
    ``["small house"]``. An empty caption or one without nouns gives ``[]``. Raises ``TypeError`` when
    ``caption`` is not a ``str`` (e.g. ``None``) and ``ValueError`` for a negative ``max_categories``.
    ``parser`` defaults to :func:`default_parser`.
    """
    _check_args(caption, max_categories)
    return (parser or default_parser()).categories(
        caption, max_categories=max_categories, keep_adjectives=keep_adjectives
    )
