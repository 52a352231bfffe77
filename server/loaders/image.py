"""Image loader (png, jpg/jpeg, bmp, tif/tiff, webp): the text OCR reads, one Document per frame.

The header is checked here (size, frame count, pixels) before any pixel is decoded; decoding and OCR happen in
the OCR worker processes, within the file's deadline.
"""

from __future__ import annotations

import io
from pathlib import Path

from server.documents import Document
from server.errors import DocumentLoadError, FileTooLarge, OcrDisabled, OcrUnavailable
from server.loaders._common import clean_text, make_doc
from server.loaders.limits import Budget
from server.ocr import ImageJob, OcrText, PageOcr

_RASTER = frozenset({"PNG", "JPEG", "MPO", "BMP", "DIB", "TIFF", "WEBP", "GIF"})  # pictures PIL decodes itself


def require_ocr(budget: Budget, source: str, what: str) -> PageOcr:
    """The file's OCR, or a clear refusal when it has none or it is turned off."""
    if budget.ocr is None:
        raise OcrUnavailable(f"{source}: {what} can only be read with OCR, which this server does not run")
    if not budget.ocr.enabled:
        raise OcrDisabled(
            f"{source}: {what} can only be read with OCR, which is off (ocr: never); upload it with ocr=auto"
        )
    return budget.ocr


def load_image(path: Path, source: str, budget: Budget) -> list[Document]:
    ocr = require_ocr(budget, source, "an image")
    data = path.read_bytes()
    frames = check_image(data, source, budget, ocr.options.min_image_side)
    jobs = [ImageJob(data, frame, budget.max_pixels) for frame in range(frames)]
    docs = []
    for number, found in enumerate(ocr.read_all(jobs, source, budget.remaining), start=1):
        budget.tick()
        if found.text.strip():
            docs.append(ocr_doc(found, source, number if frames > 1 else None))
    if not docs:
        raise DocumentLoadError(f"{source}: OCR found no text in the image; check that it holds legible text")
    return docs


def ocr_doc(found: OcrText, source: str, page: int | None) -> Document:
    metadata: dict[str, object] = {"format": "text", "ocr": True, "ocr_confidence": found.confidence}
    if page is not None:
        metadata["page"] = page
    return make_doc(clean_text(found.text), source, **metadata)


def check_image(data: bytes, source: str, budget: Budget, min_side: int) -> int:
    """The image's frame count, once its header shows a readable image of sane size; nothing is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            frames = int(getattr(image, "n_frames", 1))
    except Image.DecompressionBombError as err:
        raise FileTooLarge(f"{source}: {err}; it may be a decompression bomb (limits.max_image_pixels)") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DocumentLoadError(
            f"{source}: not a readable image ({type(err).__name__}); the file is corrupt or not an image, "
            "re-save it as PNG or JPEG and upload again"
        ) from err
    budget.pixels(width, height)
    if min(width, height) < min_side:
        raise DocumentLoadError(
            f"{source}: the image is {width} x {height} pixels, too small to hold readable text "
            f"(at least {min_side} pixels a side)"
        )
    budget.pages(frames, "frames")
    return frames


class EmbeddedImages:
    """OCR of the pictures inside a document (docx, pptx), when ocr.office_images is on and the file's OCR allows.

    Pictures that are not raster images (EMF, SVG) or too small to hold text (icons, rules) are passed over;
    one over limits.max_image_pixels refuses the file, as an image file would be."""

    def __init__(self, budget: Budget, source: str) -> None:
        ocr = budget.ocr
        self._ocr = ocr if ocr is not None and ocr.enabled and ocr.options.office_images else None
        self._budget = budget
        self._source = source
        self.read_count = 0

    def text(self, data: bytes) -> str:
        """The picture's text ("" when none, or when it is not read)."""
        if self._ocr is None or not self._worth_reading(data, self._ocr.options.min_image_side):
            return ""
        found = self._ocr.read(ImageJob(data, 0, self._budget.max_pixels), self._source, self._budget.remaining)
        self.read_count += 1
        return clean_text(found.text)

    def metadata(self) -> dict[str, object]:
        return {"ocr": True, "ocr_images": self.read_count} if self.read_count else {}

    def _worth_reading(self, data: bytes, min_side: int) -> bool:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                raster = image.format in _RASTER
        except Image.DecompressionBombError as err:
            raise FileTooLarge(
                f"{self._source}: a picture inside is too large ({err}); limits.max_image_pixels"
            ) from err
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return False  # a vector picture, or one PIL cannot read: it holds no text we could get
        if not raster:
            return False  # WMF, EMF, EPS: PIL knows the header but draws no pixels without outside tools
        self._budget.pixels(width, height)
        return min(width, height) >= min_side
