"""What an OCR worker process does: decode one page (an image frame or a rendered PDF page) and read its text.

Runs only inside the pool's worker processes (server/ocr/pool.py); RapidOCR and its ONNX models load there, on the
first page a worker gets. Everything a page needs travels in its job, so a worker keeps no state but the engine.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_SIDE = 4000  # longer sides are scaled down first: detection works at far less, and memory stays bounded
_MIN_SIDE = 8


@dataclass(frozen=True)
class ImageJob:
    """One frame of an image file (TIFFs may hold several), as the file's bytes."""

    data: bytes
    frame: int
    max_pixels: int


@dataclass(frozen=True)
class PdfPageJob:
    """One page of a PDF, rendered at `dpi` (less if that would pass `max_pixels`)."""

    path: str
    index: int
    dpi: float
    max_pixels: int


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    box: tuple[float, float, float, float]  # left, top, right, bottom in pixels


@dataclass(frozen=True)
class OcrText:
    """A page's text in reading order and the mean confidence of its lines (0 when none was found)."""

    text: str
    confidence: float
    lines: int


OcrJob = ImageJob | PdfPageJob


def serve(conn: Connection, threads: int) -> None:
    """A worker's loop: one job in, ("ok", OcrText) or ("error", reason) out, until the pipe closes."""
    engine: Any = None
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            engine = engine or _load_engine(threads)
            conn.send(("ok", recognize(engine, job)))
        except Exception as err:  # noqa: BLE001 - a worker answers every job; the parent makes it a per-file error
            conn.send(("error", f"{type(err).__name__}: {err}"))


def _load_engine(threads: int) -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)


def recognize(engine: Any, job: OcrJob) -> OcrText:
    image = _page_image(job)
    if min(image.size) < _MIN_SIDE:
        return OcrText("", 0.0, 0)
    found, _elapsed = engine(image)
    lines = [_line(item) for item in found or [] if str(item[1]).strip()]
    if not lines:
        return OcrText("", 0.0, 0)
    confidence = sum(line.confidence for line in lines) / len(lines)
    return OcrText(reading_order(lines), round(confidence, 4), len(lines))


def _page_image(job: OcrJob) -> Image:
    if isinstance(job, ImageJob):
        return _image_frame(job)
    return _render_pdf_page(job)


def _image_frame(job: ImageJob) -> Image:
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = job.max_pixels  # this process only: PIL refuses larger frames before decoding them
    with Image.open(io.BytesIO(job.data)) as opened:
        opened.seek(job.frame)
        frame = ImageOps.exif_transpose(opened) or opened
        return _bounded(frame.convert("RGB"))


def _render_pdf_page(job: PdfPageJob) -> Image:
    import pypdfium2

    document = pypdfium2.PdfDocument(job.path)
    try:
        page = document[job.index]
        width, height = page.get_size()
        scale = job.dpi / 72
        if width * height * scale * scale > job.max_pixels:
            scale = (job.max_pixels / max(1.0, width * height)) ** 0.5
        image = page.render(scale=scale).to_pil()
        return _bounded(image.convert("RGB"))
    finally:
        document.close()


def _bounded(image: Image) -> Image:
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def _line(item: Any) -> OcrLine:
    points, text, score = item[0], str(item[1]).strip(), float(item[2])
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return OcrLine(text, score, (min(xs), min(ys), max(xs), max(ys)))


def reading_order(lines: list[OcrLine]) -> str:
    """Lines grouped into rows (boxes that overlap vertically by half their height), rows top to bottom, boxes
    left to right; boxes of a row joined with a space unless both sides are CJK characters."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda item: (item.box[1] + item.box[3]) / 2):
        if rows and _same_row(rows[-1], line):
            rows[-1].append(line)
        else:
            rows.append([line])
    return "\n".join(_join_row(sorted(row, key=lambda item: item.box[0])) for row in rows)


def _same_row(row: list[OcrLine], line: OcrLine) -> bool:
    top = min(item.box[1] for item in row)
    bottom = max(item.box[3] for item in row)
    overlap = min(bottom, line.box[3]) - max(top, line.box[1])
    height = min(bottom - top, line.box[3] - line.box[1])
    return height > 0 and overlap >= height / 2


def _join_row(row: list[OcrLine]) -> str:
    text = row[0].text
    for line in row[1:]:
        text += line.text if _cjk(text[-1]) and _cjk(line.text[0]) else " " + line.text
    return text


def _cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\uff00" <= char <= "\uffef"
