"""OCR with the real RapidOCR models on documents drawn at test time (tests/ocr_docs.py): images, scanned and mixed
PDFs, pictures inside docx; the OCR modes; bad images and PDFs, each a clear per-file error within bounded time.

One pool of two worker processes serves the whole module, so the models load once per worker."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import docx
import pytest
from ocr_docs import EN_LINES, ZH_LINES, a4_page, cer, image_bytes, pdf_of, text_image, write
from PIL import Image

from server.errors import DocumentLoadError, FileTooLarge, OcrDisabled, OcrFailed
from server.loaders import LoadedFile, LoadLimits, load_file
from server.ocr import OcrOptions, OcrService
from server.ocr.engine import OcrLine, reading_order

EXPECTED = "\n".join(ZH_LINES + EN_LINES)
LIMITS = LoadLimits(
    max_unzipped_bytes=64 << 20,
    max_zip_members=1000,
    max_zip_ratio=100,
    max_chars=1_000_000,
    max_rows=1000,
    timeout_s=120,
    max_image_pixels=20_000_000,
    max_pages=500,
)


@pytest.fixture(scope="module")
def ocr() -> Iterator[OcrService]:
    service = OcrService(OcrOptions(), workers=2)
    yield service
    service.close()


def read(path: Path, ocr: OcrService, mode: str = "") -> LoadedFile:
    return load_file(path, limits=LIMITS, ocr=ocr.for_file(mode))


def text_of(loaded: LoadedFile) -> str:
    return "\n".join(doc.page_content for doc in loaded.docs)


# ---- reading order (no OCR) ----------------------------------------------------------------------------------


def _line(text: str, left: float, top: float, right: float, bottom: float) -> OcrLine:
    return OcrLine(text, 0.9, (left, top, right, bottom))


def test_reading_order_rows_top_to_bottom_boxes_left_to_right() -> None:
    lines = [
        _line("world", 120, 12, 200, 40),
        _line("第二行", 10, 60, 100, 90),
        _line("hello", 10, 10, 100, 38),
        _line("继续", 105, 62, 160, 92),
    ]
    assert reading_order(lines) == "hello world\n第二行继续"


# ---- images --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "rotate"),
    [("scan.png", "PNG", 0.0), ("photo.jpg", "JPEG", 0.0), ("tilted.webp", "WEBP", 3.0), ("tilted.bmp", "BMP", -2.5)],
)
def test_image_text_in_reading_order(tmp_path: Path, ocr: OcrService, name: str, fmt: str, rotate: float) -> None:
    image = text_image(ZH_LINES + EN_LINES, rotate=rotate)
    loaded = read(write(tmp_path / name, image_bytes(image, fmt)), ocr)
    assert loaded.loader == "ImageOcrLoader" and loaded.ocr
    assert cer(EXPECTED, text_of(loaded)) <= 0.05, text_of(loaded)
    metadata = loaded.docs[0].metadata
    assert metadata["ocr"] is True and 0.8 <= metadata["ocr_confidence"] <= 1.0


def test_scan_like_a4_page_at_150_dpi(tmp_path: Path, ocr: OcrService) -> None:
    loaded = read(write(tmp_path / "page.tiff", image_bytes(a4_page(ZH_LINES + EN_LINES), "TIFF", dpi=(150, 150))), ocr)
    assert cer(EXPECTED, text_of(loaded)) <= 0.05, text_of(loaded)


def test_tiff_frames_are_pages(tmp_path: Path, ocr: OcrService) -> None:
    first, second = text_image(ZH_LINES[:1]), text_image(EN_LINES[:1])
    data = image_bytes(first, "TIFF", save_all=True, append_images=[second])
    loaded = read(write(tmp_path / "two.tif", data), ocr)
    assert [doc.metadata["page"] for doc in loaded.docs] == [1, 2]
    assert cer(ZH_LINES[0], loaded.docs[0].page_content) <= 0.05
    assert cer(EN_LINES[0], loaded.docs[1].page_content) <= 0.05


def test_image_with_ocr_never_is_refused(tmp_path: Path, ocr: OcrService) -> None:
    path = write(tmp_path / "scan.png", image_bytes(text_image(ZH_LINES)))
    with pytest.raises(OcrDisabled, match=r"scan\.png.*ocr: never"):
        read(path, ocr, "never")


# ---- PDFs ----------------------------------------------------------------------------------------------------


def test_image_only_pdf_is_read_page_by_page(tmp_path: Path, ocr: OcrService) -> None:
    pages = [text_image(ZH_LINES), text_image(EN_LINES, rotate=2)]
    loaded = read(write(tmp_path / "scanned.pdf", pdf_of(list(pages))), ocr)
    assert loaded.loader == "PdfLoader" and loaded.ocr
    assert [doc.metadata["page"] for doc in loaded.docs] == [1, 2]
    assert all(doc.metadata["ocr"] is True for doc in loaded.docs)
    assert cer("\n".join(ZH_LINES), loaded.docs[0].page_content) <= 0.05
    assert cer("\n".join(EN_LINES), loaded.docs[1].page_content) <= 0.05


def test_mixed_pdf_keeps_the_text_layer_and_reads_the_scans(tmp_path: Path, ocr: OcrService) -> None:
    layer = "This page has a text layer that the loader keeps as it is"
    path = write(tmp_path / "mixed.pdf", pdf_of([layer, text_image(ZH_LINES)]))
    loaded = read(path, ocr)
    first, second = loaded.docs
    assert first.page_content == layer and "ocr" not in first.metadata and first.metadata["page"] == 1
    assert second.metadata["ocr"] is True and second.metadata["page"] == 2
    assert cer("\n".join(ZH_LINES), second.page_content) <= 0.05
    without = read(path, ocr, "never")
    assert [doc.page_content for doc in without.docs] == [layer] and not without.ocr
    always = read(path, ocr, "always")
    assert always.docs[0].metadata.get("ocr") is True and cer(layer, always.docs[0].page_content) <= 0.05


def test_scanned_pdf_with_ocr_never_says_how_to_read_it(tmp_path: Path, ocr: OcrService) -> None:
    path = write(tmp_path / "scanned.pdf", pdf_of([text_image(EN_LINES)]))
    with pytest.raises(DocumentLoadError, match=r"no text layer.*ocr=auto"):
        read(path, ocr, "never")


# ---- pictures in Office files --------------------------------------------------------------------------------


def test_docx_picture_is_read_where_it_stands(tmp_path: Path, ocr: OcrService) -> None:
    picture = write(tmp_path / "picture.png", image_bytes(text_image(ZH_LINES)))
    document = docx.Document()
    document.add_paragraph("Before the picture")
    document.add_picture(str(picture))
    document.add_paragraph("After the picture")
    document.save(str(tmp_path / "report.docx"))
    loaded = read(tmp_path / "report.docx", ocr)
    text = loaded.docs[0].page_content
    assert loaded.ocr and loaded.docs[0].metadata["ocr_images"] == 1
    assert text.startswith("Before the picture") and text.endswith("After the picture")
    assert cer("\n".join(ZH_LINES), text.split("\n", 1)[1].rsplit("\n", 1)[0]) <= 0.05
    plain = read(tmp_path / "report.docx", ocr, "never")
    assert plain.docs[0].page_content == "Before the picture\nAfter the picture" and not plain.ocr


# ---- bad input -----------------------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels but holds a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(60_000, 60_000), (6_000, 5_000)])
def test_decompression_bomb_refused_from_its_header(tmp_path: Path, ocr: OcrService, width: int, height: int) -> None:
    started = time.monotonic()
    with pytest.raises(FileTooLarge, match=r"bomb\.png.*(decompression bomb|max_image_pixels)"):
        read(write(tmp_path / "bomb.png", _png_header(width, height)), ocr)
    assert time.monotonic() - started < 2


def test_tiny_and_corrupt_images_fail_clearly(tmp_path: Path, ocr: OcrService) -> None:
    with pytest.raises(DocumentLoadError, match=r"dot\.png.*1 x 1 pixels"):
        read(write(tmp_path / "dot.png", image_bytes(Image.new("RGB", (1, 1), "white"))), ocr)
    with pytest.raises(DocumentLoadError, match=r"noise\.jpg.*not a readable image"):
        read(write(tmp_path / "noise.jpg", b"\xff\xd8\xff\xe0 not really a jpeg" * 10), ocr)
    whole = image_bytes(text_image(EN_LINES))
    with pytest.raises(OcrFailed, match=r"cut\.png.*could not be read"):
        read(write(tmp_path / "cut.png", whole[: len(whole) // 2]), ocr)
    blank = read(write(tmp_path / "ok.png", whole), ocr)  # the pool still works after a failed page
    assert cer("\n".join(EN_LINES), text_of(blank)) <= 0.05


def test_too_many_pages_refused_before_any_is_read(tmp_path: Path, ocr: OcrService) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(LIMITS.max_pages + 1):
        writer.add_blank_page(100, 100)
    with (tmp_path / "long.pdf").open("wb") as out:
        writer.write(out)
    started = time.monotonic()
    with pytest.raises(FileTooLarge, match=r"long\.pdf: 501 pages.*max_pages_per_file"):
        read(tmp_path / "long.pdf", ocr)
    assert time.monotonic() - started < 5


def test_password_protected_pdf(tmp_path: Path, ocr: OcrService) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    with (tmp_path / "locked.pdf").open("wb") as out:
        writer.write(out)
    with pytest.raises(DocumentLoadError, match=r"locked\.pdf.*password"):
        read(tmp_path / "locked.pdf", ocr)


def test_a_page_over_its_time_is_stopped_and_the_worker_replaced(tmp_path: Path) -> None:
    path = write(tmp_path / "slow.png", image_bytes(text_image(EN_LINES)))
    service = OcrService(OcrOptions(page_timeout_s=0.2), workers=1)
    try:
        started = time.monotonic()
        with pytest.raises(OcrFailed, match=r"longer than 0 s|longer than 0\.2|page_timeout_s"):
            load_file(path, limits=LIMITS, ocr=service.for_file())  # the first page also waits for the models
        assert time.monotonic() - started < 10
    finally:
        service.close()
