"""Validated names and the on-disk layout of a knowledge base:

    <data_dir>/<kb>/content/<file>                              the files, as uploaded
    <data_dir>/<kb>/vector_store/<model>/<collection>/          vectors kept in files (FAISS)
    <data_dir>/<kb>/keyword_index.<collection>.db               the keyword index
    <data_dir>/<kb>/.staging/<lease>-<uuid>/                     uploads being ingested

The registry's collection name is part of the vector and keyword paths, so a rebuild writes beside the live
files and the switch is the registry's commit alone.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePosixPath

from server.errors import InvalidName

MAX_KB_NAME = 64
MAX_FILE_PATH = 512
_FORBIDDEN_IN_NAME = set('/\\:*?"<>|')


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def validate_kb_name(name: str | None) -> str:
    """Return the name unchanged if it can be a folder name on every OS, else raise InvalidName."""
    if name is None or not name.strip():
        raise InvalidName("knowledge base name is empty; give a name such as 'samples' or '产品手册'")
    if name != name.strip():
        raise InvalidName(f"knowledge base name {name!r} has leading or trailing spaces; remove them")
    if len(name) > MAX_KB_NAME:
        raise InvalidName(f"knowledge base name is {len(name)} characters long; use at most {MAX_KB_NAME}")
    if _has_control(name):
        raise InvalidName("knowledge base name contains control characters; use visible characters only")
    bad = sorted(_FORBIDDEN_IN_NAME.intersection(name))
    if bad or ".." in name or name.startswith("."):
        shown = " ".join(bad) or ".."
        raise InvalidName(
            f"knowledge base name {name!r} contains {shown!s} or starts with '.'; "
            "use letters, digits, Chinese characters, '-', '_' or spaces"
        )
    return name


def validate_file_path(file_name: str | None) -> str:
    """Normalise a KB-relative file path to 'a/b.txt' form, refusing anything that could leave the KB folder."""
    if file_name is None or not file_name.strip():
        raise InvalidName("file name is empty")
    posix = file_name.replace("\\", "/")
    if len(posix) > MAX_FILE_PATH:
        raise InvalidName(f"file path is {len(posix)} characters long; use at most {MAX_FILE_PATH}")
    if _has_control(posix):
        raise InvalidName(f"file name {file_name!r} contains control characters")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise InvalidName(f"file name {file_name!r} is an absolute path; send a path relative to the KB")
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if not parts or any(part == ".." for part in parts):
        raise InvalidName(f"file name {file_name!r} contains '..'; send a path inside the knowledge base")
    if any(part.strip() != part or not part.strip() for part in parts):
        raise InvalidName(f"file name {file_name!r} has a folder or file name with leading/trailing spaces")
    return str(PurePosixPath(*parts))


def kb_dir(data_dir: Path, kb_name: str) -> Path:
    return data_dir / validate_kb_name(kb_name)


def content_dir(data_dir: Path, kb_name: str) -> Path:
    return kb_dir(data_dir, kb_name) / "content"


def staging_dir(data_dir: Path, kb_name: str) -> Path:
    """Uploads land here first (same filesystem as content/, so moving them in is an atomic rename)."""
    return kb_dir(data_dir, kb_name) / ".staging"


def vector_root(data_dir: Path, kb_name: str) -> Path:
    return kb_dir(data_dir, kb_name) / "vector_store"


def model_dir(data_dir: Path, kb_name: str, embed_model: str) -> Path:
    """Where the vectors of one embedding model live; before collections were part of the layout, a FAISS file sat
    directly in this folder."""
    return vector_root(data_dir, kb_name) / embed_model.replace("/", "--")


def vector_dir(data_dir: Path, kb_name: str, embed_model: str, collection: str) -> Path:
    return model_dir(data_dir, kb_name, embed_model) / collection


def keyword_file(data_dir: Path, kb_name: str, collection: str) -> Path:
    return kb_dir(data_dir, kb_name) / f"keyword_index.{collection}.db"


def content_file(data_dir: Path, kb_name: str, file_name: str) -> Path:
    return content_dir(data_dir, kb_name) / validate_file_path(file_name)


def list_content_files(data_dir: Path, kb_name: str) -> list[str]:
    """Relative '/'-separated paths of every regular file under the KB's content folder, sorted."""
    root = content_dir(data_dir, kb_name)
    if not root.is_dir():
        return []
    names = []
    for path in root.rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            names.append(path.relative_to(root).as_posix())
    return sorted(names)
