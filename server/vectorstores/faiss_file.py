"""The FAISS store's one data file: an .npz of the unit vectors, their int64 labels, and the docstore as two
UTF-8 JSON members: `info` (format version, dim, label counter) and `chunks` ([label, id, text, metadata] rows).
An IVF index adds `centroids`, each row's list number (`lists`) and the size it was trained on (`trained_on`),
so reopening it needs neither training nor an assignment pass.

Raw arrays rather than `faiss.serialize_index` bytes: copying them out of the index takes about a fifth of the
time serialising does (the copy happens while writers wait), and the file does not depend on FAISS's own binary
format. `np.load(..., allow_pickle=False)` means a tampered file can at worst fail to parse, never run code.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from server.vectorstores.faiss_index import IvfLayout

DATA_FILE = "faiss_store.npz"
# Rows per json.dumps call. Each call holds the GIL; in slices, a 100k-chunk flush lets searches run in between.
_ROWS_PER_SLICE = 2000


_JSON = ("info", "chunks")


class FileFormatError(ValueError):
    """The file exists but is not a FAISS store file we can read."""


class StoreData(NamedTuple):
    vectors: npt.NDArray[np.float32]  # (n, dim), row i has label labels[i]
    labels: npt.NDArray[np.int64]
    info: dict[str, Any]
    chunks: list[list[Any]]
    layout: IvfLayout | None = None


def read_store_file(path: Path) -> StoreData:
    """The file's arrays and docstore; PermissionError passes through, anything unreadable is FileFormatError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            vectors, labels = data["vectors"], data["labels"]
            info, chunks = (json.loads(data[name].tobytes().decode("utf-8", "surrogatepass")) for name in _JSON)
            layout = _read_layout(data, len(labels))
    except PermissionError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as exc:
        # A .npy instead of an .npz is not a context manager (TypeError/AttributeError); truncation gives
        # BadZipFile or EOFError; bad JSON or UTF-8 gives ValueError.
        raise FileFormatError(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(info, dict) or not isinstance(chunks, list):
        raise FileFormatError("the docstore is not an info object and a chunk list")
    if vectors.dtype != np.float32 or vectors.ndim != 2 or labels.dtype != np.int64 or labels.ndim != 1:
        raise FileFormatError(f"unexpected arrays: vectors {vectors.dtype}{vectors.shape}, labels {labels.dtype}")
    if len(labels) != len(vectors):
        raise FileFormatError(f"{len(vectors)} vectors but {len(labels)} labels")
    if layout is not None and layout.centroids.shape[1:] != vectors.shape[1:]:
        raise FileFormatError(f"centroids of shape {layout.centroids.shape} for vectors of {vectors.shape}")
    return StoreData(vectors, labels, info, chunks, layout)


def _read_layout(data: Any, rows: int) -> IvfLayout | None:
    if "centroids" not in data.files:
        return None
    found = IvfLayout(data["centroids"], data["lists"], int(data["trained_on"]))
    nlist = len(found.centroids)
    if found.centroids.dtype != np.float32 or found.centroids.ndim != 2 or found.lists.shape != (rows,):
        raise FileFormatError(f"unexpected IVF arrays: centroids {found.centroids.shape}, lists {found.lists.shape}")
    if rows and (found.lists.min() < 0 or found.lists.max() >= nlist):
        raise FileFormatError(f"list numbers outside 0..{nlist - 1}")
    return found


def write_store_file(path: Path, data: StoreData) -> None:
    """Write to a temp file beside `path`, fsync, rename over it: readers see the old file or the new one."""
    info = _utf8(json.dumps(data.info, ensure_ascii=False))
    chunks = _utf8(_dump_rows(data.chunks))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    done = False
    try:
        with os.fdopen(fd, "wb") as tmp:
            arrays: dict[str, Any] = {"vectors": data.vectors, "labels": data.labels, "info": info, "chunks": chunks}
            if data.layout is not None:
                layout = data.layout
                arrays.update(centroids=layout.centroids, lists=layout.lists, trained_on=np.int64(layout.trained_on))
            np.savez(tmp, **arrays)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    _fsync_directory(path.parent)


def _dump_rows(rows: list[list[Any]]) -> str:
    """json.dumps(rows), one slice at a time."""
    pieces = (
        json.dumps(rows[start : start + _ROWS_PER_SLICE], ensure_ascii=False)[1:-1]
        for start in range(0, len(rows), _ROWS_PER_SLICE)
    )
    return "[" + ", ".join(pieces) + "]"


def _utf8(text: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some platforms cannot open a directory, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
