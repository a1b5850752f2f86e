"""Writing outputs and fingerprinting inputs: atomic files and folders, JSON, torch files, hashes.

Every output appears whole or not at all: it is written into a temporary sibling (``.NAME.tmp-XXXX``, which
:func:`sketchseg.pipeline.clear_leftovers` removes after an interruption) and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``target``; on success it replaces ``target``.

    On any exception the temporary directory is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{target} exists")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield the path of a temporary file beside ``target`` to write; it replaces ``target`` only on success.

    The temporary name is ``.NAME.tmp-XXXX`` with no dot after ``NAME``: torch names the archive inside a file after
    the file's name up to its last dot, so a torch file saved here has the bytes of one saved as ``.NAME`` anywhere.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Open a temporary file beside ``target`` for writing; it replaces ``target`` only on success."""
    with atomic_path(target) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
        yield fh


def json_text(data: Any, indent: int | None = 1, sort_keys: bool = False, allow_nan: bool = True) -> str:
    """``data`` as the JSON text sketchseg writes: indented by ``indent`` (None: one line), ending in a newline."""
    return json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"


def write_json(
    path: str | os.PathLike[str],
    data: Any,
    *,
    indent: int | None = 1,
    sort_keys: bool = False,
    allow_nan: bool = True,
    atomic: bool = True,
) -> Path:
    """Write :func:`json_text` of ``data`` to ``path`` (parent folders created), atomically unless ``atomic`` is
    false (files inside a folder that itself appears atomically); returns ``path``."""
    path = Path(path)
    text = json_text(data, indent, sort_keys, allow_nan)
    if atomic:
        with atomic_file(path) as fh:
            fh.write(text)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` of ``obj`` to ``path``, atomically: the same object gives the same bytes (:func:`atomic_path`)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def png_base64(img: Any, compress_level: int = 6) -> str:
    """A PIL image as the base64 text of its PNG file (``compress_level`` 1: half the encoding time of PIL's 6)."""
    import base64
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_sha1(folder: str | os.PathLike[str] | None) -> str | None:
    """SHA-1 over the names and SHA-256 of the files directly in ``folder`` (its content); None for no folder."""
    if folder is None:
        return None
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return hashlib.sha1("".join(f"{p.name}:{file_sha256(p)}\n" for p in files).encode()).hexdigest()


def listing_fingerprint(root: str | os.PathLike[str]) -> str:
    """SHA-256 of every file's relative path, size and modification time under ``root`` (cheap: no file is read)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            st = path.stat()
            h.update(f"{path.relative_to(root)}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def json_sha1(data: Any) -> str:
    """Hex SHA-1 of ``data`` as sorted JSON (values JSON cannot hold written as ``str``): a key for parameters."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
