"""The FAISS store's one data file: an .npz holding the serialized index and the docstore as UTF-8 JSON.

`np.load(..., allow_pickle=False)` means a tampered file can at worst fail to parse, never run code.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

DATA_FILE = "faiss_store.npz"


class FileFormatError(ValueError):
    """The file exists but is not a FAISS store file we can read."""


def read_store_file(path: Path) -> tuple[Any, dict[str, Any]]:
    """The serialized index (uint8 array) and the docstore header; PermissionError passes through."""
    try:
        with np.load(path, allow_pickle=False) as data:
            index_bytes = data["index"]
            header = json.loads(data["docstore"].tobytes().decode("utf-8", "surrogatepass"))
    except PermissionError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as exc:
        # A .npy instead of an .npz is not a context manager (TypeError/AttributeError); truncation gives
        # BadZipFile or EOFError; bad JSON or UTF-8 gives ValueError.
        raise FileFormatError(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(header, dict):
        raise FileFormatError("the docstore is not a JSON object")
    return index_bytes, header


def write_store_file(path: Path, index_bytes: Any, header: Mapping[str, Any]) -> None:
    """Write to a temp file beside `path`, fsync, rename over it: readers see the old file or the new one."""
    payload = json.dumps(header, ensure_ascii=False).encode("utf-8", "surrogatepass")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    done = False
    try:
        with os.fdopen(fd, "wb") as tmp:
            np.savez(tmp, index=index_bytes, docstore=np.frombuffer(payload, dtype=np.uint8))
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some platforms cannot open a directory, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
