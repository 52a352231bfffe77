"""Document loaders: turn a file on disk into Documents, choosing the loader by file extension.

Importing this package is cheap; each format's parsing library is imported when a file of that format is
loaded. Every failure comes out as UnsupportedFileType or DocumentLoadError, naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from server.documents import Document
from server.errors import DocumentLoadError, UnsupportedFileType, ZhikuError
from server.loaders.encoding import detect_encoding, read_text
from server.loaders.limits import ZIP_FORMATS, Budget, LoadLimits, check_zip
from server.loaders.registry import LOADERS, FileLoader

if TYPE_CHECKING:
    from server.ocr import PageOcr

__all__ = ["LOADERS", "SUPPORTED_EXTENSIONS", "LoadLimits", "LoadedFile", "detect_encoding", "load_file", "read_text"]

SUPPORTED_EXTENSIONS: frozenset[str] = LOADERS.extensions()

_IMAGES = frozenset({".gif", ".heic", ".heif", ".svg", ".ico"})
_OLD_OFFICE = {".ppt": ".pptx"}


@dataclass(frozen=True)
class LoadedFile:
    docs: list[Document]
    loader: str

    @property
    def ocr(self) -> bool:
        """Whether any of the file's text was read by OCR."""
        return any(doc.metadata.get("ocr") is True for doc in self.docs)


def load_file(
    path: Path, *, source: str | None = None, limits: LoadLimits | None = None, ocr: PageOcr | None = None
) -> LoadedFile:
    """Load `path` into Documents; `source` (default: the file name) goes into every Document's metadata.

    With `limits`, a file over one of them is refused (FileTooLarge, DocumentLoadError); without, nothing is bounded.
    With `ocr`, images and pages without text are read by OCR (within the same limits); without, they are not.
    No message names `path` (a staged copy's place on disk): they name `source`.
    """
    name = source or path.name
    loader = _pick_loader(path, name)
    _check_readable(path, name)
    if limits is not None and path.suffix.lower() in ZIP_FORMATS:
        check_zip(path, name, limits)
    budget = Budget(limits, name, ocr)
    try:
        docs = loader.load(path, name, budget)
    except ZhikuError as error:
        raise _without_path(error, path, name) from error
    except RecursionError as err:
        raise DocumentLoadError(f"{name}: structure nested too deeply to parse; simplify or re-save it") from err
    except Exception as err:  # the loader boundary: no library exception may escape unexplained
        detail = str(err).replace(str(path), name)
        raise DocumentLoadError(
            f"{name}: could not be parsed ({type(err).__name__}: {detail}); the file may be corrupt, "
            "re-save or re-export it and upload again"
        ) from err
    if not docs:
        raise DocumentLoadError(f"{name}: no text could be extracted; if it holds only images or scans, run OCR first")
    budget.check_text(sum(len(doc.page_content) for doc in docs))
    return LoadedFile(docs=docs, loader=loader.name)


def _without_path(error: ZhikuError, path: Path, name: str) -> ZhikuError:
    """The same error, its message naming the file as the user knows it rather than where its copy sits."""
    if str(path) not in error.message and str(path.parent) not in error.message:
        return error
    message = error.message.replace(str(path), name).replace(str(path.parent), ".")
    return type(error)(message)


def _pick_loader(path: Path, name: str) -> FileLoader:
    suffix = path.suffix.lower()
    found = LOADERS.for_name(name if name.lower().endswith(suffix) else path.name)
    if found is not None:
        return found
    supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
    if suffix in _IMAGES:
        raise UnsupportedFileType(
            f"{name}: {suffix} images are not read; convert it to PNG or JPEG (read by OCR). "
            f"Supported types: {supported}"
        )
    hint = f"save it as {_OLD_OFFICE[suffix]} and upload again. " if suffix in _OLD_OFFICE else ""
    raise UnsupportedFileType(
        f"{name}: file type {suffix or '(no extension)'!r} is not supported; {hint}Supported types: {supported}"
    )


def _check_readable(path: Path, name: str) -> None:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DocumentLoadError(f"{name}: cannot read the file ({err.strerror or err}); check that it exists") from err
    if size == 0:
        raise DocumentLoadError(f"{name}: the file is empty (0 bytes); upload a file with content")
