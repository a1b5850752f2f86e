"""What a request's vocabulary may hold, whether it was given or parsed from a caption: the one category limit of both
servers (`sketchseg serve` and the MLflow pyfunc model). The sketch itself is decoded by
:func:`sketchseg.data.sketch.decode_sketch`, under :class:`~sketchseg.data.sketch.InputLimits`."""

from __future__ import annotations

from collections.abc import Sequence

from sketchseg.data.sketch import check_text
from sketchseg.errors import InputError

# categories per request, given or parsed from a caption: the one limit of both servers (sketchseg serve, the pyfunc
# model); at most render.labels.MAX_LABELLED_CATEGORIES (254) fit the 8-bit label PNG
MAX_CATEGORIES = 32
MAX_CATEGORY_CHARS = 100
MAX_CAPTION_CHARS = 2_000


def check_vocabulary(names: Sequence[str], where: str = "", caption: bool = False) -> None:
    """InputError when a cleaned category list holds more than ``MAX_CATEGORIES`` names or a name longer than
    ``MAX_CATEGORY_CHARS`` characters (``caption``: the names were parsed from a caption)."""
    at = f"{where}: " if where else ""
    source = "the caption names" if caption else "got"
    if len(names) > MAX_CATEGORIES:
        hint = "shorten the caption or send categories" if caption else "send fewer categories"
        raise InputError(
            f"{at}{source} {len(names)} categories, over the limit of {MAX_CATEGORIES} per request; {hint}"
        )
    for name in names:
        check_text(name, f"{at}category {name[:20]!r}")
        if len(name) > MAX_CATEGORY_CHARS:
            raise InputError(f"{at}category names are limited to {MAX_CATEGORY_CHARS} characters ({name[:20]!r}...)")
