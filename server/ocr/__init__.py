"""OCR (RapidOCR, offline) for images, scanned PDF pages and pictures inside Office files.

Importing this package is cheap: the engine and its models load inside the worker processes (server/ocr/pool.py)
when the first page needs them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from server.errors import InvalidInput, OcrFailed, OcrUnavailable
from server.ocr.engine import ImageJob, OcrJob, OcrText, PdfPageJob
from server.ocr.pool import OcrPool

__all__ = [
    "OCR_MODES",
    "ImageJob",
    "OcrMode",
    "OcrOptions",
    "OcrPool",
    "OcrService",
    "OcrText",
    "PageOcr",
    "PdfPageJob",
]

OcrMode = Literal["auto", "always", "never"]
OCR_MODES: tuple[OcrMode, ...] = ("auto", "always", "never")


@dataclass(frozen=True)
class OcrOptions:
    """How files are OCR'd (the `ocr` settings section)."""

    mode: OcrMode = "auto"  # auto: pages without a text layer; always: every page; never: no OCR
    page_timeout_s: float = 60.0
    min_page_chars: int = 16  # a PDF page with fewer characters of text layer than this is OCR'd (auto)
    render_dpi: float = 150.0
    office_images: bool = True  # pictures inside docx and pptx
    min_image_side: int = 16  # images with a shorter side hold no readable text


def check_mode(mode: str) -> OcrMode:
    for known in OCR_MODES:
        if mode == known:
            return known
    raise InvalidInput(f"ocr must be one of {', '.join(OCR_MODES)} (or empty for the default), got {mode!r}")


class PageOcr:
    """One file's use of OCR: the mode it is read with, and pages read by the pool within the file's deadline."""

    def __init__(self, pool: OcrPool, options: OcrOptions, mode: OcrMode) -> None:
        self.pool = pool
        self.options = options
        self.mode = mode

    @property
    def enabled(self) -> bool:
        return self.mode != "never"

    def read(self, job: OcrJob, source: str, remaining_s: Callable[[], float]) -> OcrText:
        """OCR one page of `source`, waiting no longer than the file has left (`remaining_s()`) nor than
        ocr.page_timeout_s; errors name `source`."""
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            raise OcrUnavailable(f"{source}: OCR needs the rapidocr-onnxruntime package; install it (requirements.txt)")
        left = remaining_s()
        if left <= 0:
            raise OcrFailed(
                f"{source}: OCR did not finish within limits.parse_timeout_s; split the file into smaller ones"
            )
        timeout = max(0.1, min(self.options.page_timeout_s, left))
        try:
            return self.pool.read(job, timeout_s=timeout, wait_s=left)
        except (OcrFailed, OcrUnavailable) as error:
            raise type(error)(f"{source}: {error.message}") from error

    def read_all(self, jobs: Sequence[OcrJob], source: str, remaining_s: Callable[[], float]) -> Iterator[OcrText]:
        """The pages' texts in order, read by as many workers at once as the pool has."""
        if len(jobs) <= 1 or self.pool.size <= 1:
            yield from (self.read(job, source, remaining_s) for job in jobs)
            return
        threads = ThreadPoolExecutor(max_workers=self.pool.size, thread_name_prefix="zhiku-ocr-page")
        pages = [threads.submit(self.read, job, source, remaining_s) for job in jobs]
        try:
            for page in pages:
                yield page.result()
        finally:  # a failed page ends the file: the pages not yet started are dropped, not read for nothing
            threads.shutdown(wait=True, cancel_futures=True)


class OcrService:
    """The pool and the settings; `for_file` hands a loader what it needs for one file."""

    def __init__(self, options: OcrOptions, *, workers: int, threads: int = 1) -> None:
        self.options = options
        self._pool = OcrPool(workers, threads=threads)

    def for_file(self, mode: str = "") -> PageOcr:
        """The OCR of one file; `mode` "" takes the settings' mode."""
        return PageOcr(self._pool, self.options, check_mode(mode) if mode else self.options.mode)

    def close(self) -> None:
        self._pool.close()
