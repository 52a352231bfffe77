"""Validated names and the on-disk layout of a knowledge base:

    <data_dir>/<kb>/content/<file>                              the files, as uploaded
    <data_dir>/<kb>/vector_store/<model>/<collection>/          vectors kept in files (FAISS)
    <data_dir>/<kb>/keyword_index.<collection>.db               the keyword index
    <data_dir>/<kb>/.staging/<lease>-<uuid>/                     uploads being ingested

The registry's collection name is part of the vector and keyword paths, so a rebuild writes beside the live
files and the switch is the registry's commit alone.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path, PurePosixPath

from server.errors import InvalidName, LinkInContent

MAX_KB_NAME = 64
MAX_FILE_PATH = 512
MAX_NAME_BYTES = 255  # one folder or file name, in UTF-8: the limit of ext4, APFS, NTFS
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
    long = next((part for part in parts if len(part.encode()) > MAX_NAME_BYTES), None)
    if long is not None:
        raise InvalidName(
            f"the name {long[:40]!r}... is {len(long.encode())} bytes long; file systems allow {MAX_NAME_BYTES}: "
            "shorten it"
        )
    return str(PurePosixPath(*parts))


def validate_upload_name(file_name: str | None) -> str:
    """A path for a new file: a valid path whose names do not start with '.' (hidden files, which a rebuild from
    the content folder would not see)."""
    path = validate_file_path(file_name)
    hidden = next((part for part in path.split("/") if part.startswith(".")), None)
    if hidden is not None:
        raise InvalidName(f"file name {file_name!r}: {hidden!r} starts with '.', which marks hidden files; rename it")
    return path


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
    """Where a file of the KB is; raises LinkInContent when the path goes through a symbolic link, which Zhiku
    never follows (a link in a copied document tree could point anywhere: /etc/passwd, the registry)."""
    root = content_dir(data_dir, kb_name)
    path = root / validate_file_path(file_name)
    step = root
    for part in PurePosixPath(validate_file_path(file_name)).parts:
        step = step / part
        if step.is_symlink():
            raise LinkInContent(f"{file_name} is a symbolic link in the content folder; links are not followed")
    return path


def prepare_target(target: Path, name: str) -> None:
    """Make the folder of a new file's place in a content folder, refusing a name that clashes with what is there:
    a folder or a link where the file would go, a file where a folder would."""
    if target.is_symlink() or target.is_dir():
        raise InvalidName(f"{name}: a folder or link of that name is in the knowledge base; pick another file name")
    for parent in target.parents:
        if parent.is_symlink():
            raise InvalidName(f"{name}: {parent.name} is a symbolic link in the knowledge base; links are not followed")
        if parent.exists():
            if not parent.is_dir():
                raise InvalidName(f"{name}: {parent.name} is a file in the knowledge base, so it cannot hold others")
            break
    target.parent.mkdir(parents=True, exist_ok=True)


def list_content_files(data_dir: Path, kb_name: str) -> list[str]:
    """Relative '/'-separated paths of the regular files under the KB's content folder, sorted; hidden files and
    symbolic links (to files or folders) are left out."""
    root = content_dir(data_dir, kb_name)
    if not root.is_dir():
        return []
    names = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (base / d).is_symlink()]
        for name in files:
            path = base / name
            if not name.startswith(".") and not path.is_symlink() and path.is_file():
                names.append(path.relative_to(root).as_posix())
    return sorted(names)
