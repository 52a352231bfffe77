"""Bounds on the work one file may cause, checked before and while it is parsed (a file over one is refused with a
clear reason, the rest of an upload going on): zip bombs, huge sheets, files that take too long to parse."""

from __future__ import annotations

import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import DocumentLoadError, FileTooLarge

ZIP_FORMATS = frozenset({".docx", ".pptx", ".xlsx", ".epub"})
if TYPE_CHECKING:
    from server.ocr import PageOcr

_RATIO_FLOOR = 10 * 1024 * 1024  # members smaller than this are never refused for their ratio
_MB = 1024 * 1024
_PIL_DEFAULT_PIXELS = 89_478_485  # PIL's own bound, when no limits are given


@dataclass(frozen=True)
class LoadLimits:
    max_unzipped_bytes: int  # all members of a zip-based file (docx, pptx, xlsx, epub) together, uncompressed
    max_zip_members: int
    max_zip_ratio: float  # uncompressed / compressed size of one member over 10 MB
    max_chars: int  # text extracted from one file
    max_rows: int  # rows of one sheet or CSV file
    timeout_s: float  # parsing one file
    max_image_pixels: int = 50_000_000  # one image or image frame, checked from its header before decoding
    max_pages: int = 2_000  # pages of one PDF, frames of one TIFF


class Budget:
    """One file's allowance while it is parsed: a deadline and a row limit. Loaders call `tick` in their loops.

    `ocr` is the OCR this file may use (None: none, as when loaders run without a server)."""

    def __init__(self, limits: LoadLimits | None, source: str, ocr: PageOcr | None = None) -> None:
        self.limits = limits
        self.ocr = ocr
        self._source = source
        self._deadline = time.monotonic() + limits.timeout_s if limits else math.inf

    def remaining(self) -> float:
        """Seconds left before the file's deadline (a day without limits: OCR waits must still end)."""
        return min(self._deadline - time.monotonic(), 86_400.0)

    @property
    def max_pixels(self) -> int:
        return self.limits.max_image_pixels if self.limits is not None else _PIL_DEFAULT_PIXELS

    def pages(self, count: int, what: str = "pages") -> None:
        """Refuses a PDF or TIFF with more pages than limits.max_pages_per_file, before any page is read."""
        if self.limits is not None and count > self.limits.max_pages:
            raise FileTooLarge(
                f"{self._source}: {count:,} {what}, more than {self.limits.max_pages:,} (limits.max_pages_per_file); "
                "split it into smaller files"
            )

    def pixels(self, width: int, height: int) -> None:
        """Refuses an image larger than limits.max_image_pixels (a decompression bomb), before it is decoded."""
        limit = self.max_pixels
        if width * height > limit:
            raise FileTooLarge(
                f"{self._source}: image of {width:,} x {height:,} pixels, more than {limit:,} "
                "(limits.max_image_pixels); it may be a decompression bomb, or scale it down"
            )

    def tick(self) -> None:
        if time.monotonic() > self._deadline:
            assert self.limits is not None
            raise DocumentLoadError(
                f"{self._source}: parsing took longer than {self.limits.timeout_s:g} s (limits.parse_timeout_s); "
                "split the file into smaller ones"
            )

    def row(self, number: int) -> None:
        """Called with each row's number (from 1); refuses a sheet or CSV file with too many rows."""
        if self.limits is not None and number > self.limits.max_rows:
            raise FileTooLarge(
                f"{self._source}: more than {self.limits.max_rows:,} rows in one sheet (limits.max_rows_per_sheet); "
                "split the table into several files"
            )
        if number % 256 == 0:
            self.tick()

    def check_text(self, chars: int) -> None:
        if self.limits is not None and chars > self.limits.max_chars:
            raise FileTooLarge(
                f"{self._source}: {chars:,} characters of text, more than {self.limits.max_chars:,} "
                "(limits.max_chars_per_file); split the file into smaller ones"
            )


def check_zip(path: Path, source: str, limits: LoadLimits) -> None:
    """Refuse a zip-based file whose directory promises too much, before any member is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise DocumentLoadError(f"{source}: not a valid zip-based file ({err}); re-save it and upload again") from err
    if len(members) > limits.max_zip_members:
        raise FileTooLarge(
            f"{source}: {len(members):,} parts inside, more than {limits.max_zip_members:,} (limits.max_zip_members)"
        )
    total = sum(member.file_size for member in members)
    if total > limits.max_unzipped_bytes:
        raise FileTooLarge(
            f"{source}: {total / _MB:,.0f} MB once unpacked, more than {limits.max_unzipped_bytes / _MB:,.0f} MB "
            "(limits.max_unzipped_mb); it may be a zip bomb, or split it into smaller files"
        )
    for member in members:
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > _RATIO_FLOOR and ratio > limits.max_zip_ratio:
            raise FileTooLarge(
                f"{source}: its part {member.filename} unpacks to {member.file_size / _MB:,.0f} MB, {ratio:,.0f} times "
                f"its packed size (limits.max_zip_ratio is {limits.max_zip_ratio:g}); refused as a zip bomb"
            )
