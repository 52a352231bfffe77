"""Documents for the OCR and table tests, made at test time: text drawn with PIL in WenQuanYi Micro Hei onto images,
PDFs built from such images, from text-layer pages and with tables, and the character error rate of what OCR read
back."""

from __future__ import annotations

import io
import subprocess
import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

ZH_LINES = ["知识库问答系统读取扫描的合同", "请在三十日内完成付款并保存发票", "本地离线识别中文和英文"]
EN_LINES = ["Offline OCR reads scanned pages", "Invoice number 20261202 total 4580 yuan"]


def font_path() -> str:
    """The WenQuanYi Micro Hei file (Debian package fonts-wqy-microhei); skips the test without it."""
    try:
        found = subprocess.run(
            ["fc-list", ":family=WenQuanYi Micro Hei", "file"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        found = ""
    paths = [line.split(":")[0].strip() for line in found.splitlines() if line.strip()]
    if not paths:
        pytest.skip("fonts-wqy-microhei is not installed (scripts/system_deps.sh installs it)")
    return paths[0]


def text_image(lines: list[str], *, size: int = 32, width: int | None = None, rotate: float = 0.0) -> Image.Image:
    """Black text on white, one line per entry, `size` pixels high; turned by `rotate` degrees when asked."""
    font = ImageFont.truetype(font_path(), size)
    line_height = int(size * 1.8)
    width = width or int(max(font.getlength(line) for line in lines) + 2 * size)
    image = Image.new("RGB", (width, line_height * len(lines) + 2 * size), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((size, size + index * line_height), line, fill="black", font=font)
    if rotate:
        image = image.rotate(rotate, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC)
    return image


def a4_page(lines: list[str], *, dpi: int = 150, points: float = 12.0) -> Image.Image:
    """A scan-like A4 page at `dpi`: the lines in `points`-point type from the top, the rest blank paper."""
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    size = round(points / 72 * dpi)
    page = Image.new("RGB", (width, height), "white")
    block = text_image(lines, size=size, width=width - 2 * size)
    page.paste(block, (size, 2 * size))
    return page


def image_bytes(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def pdf_of(pages: list[str | Image.Image], *, dpi: int = 150) -> bytes:
    """A PDF whose pages are either lines of ASCII text in a text layer (str) or a scanned image (no text layer)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")  # object 3
    kids = []
    for page in pages:
        if isinstance(page, str):
            width, height = 595, 842
            shown = " T* ".join(f"({_escaped(line)}) Tj" for line in page.split("\n"))
            content = f"BT /F1 11 Tf 14 TL 60 780 Td {shown} ET".encode()
            resources = b"/Font << /F1 3 0 R >>"
        else:
            data = image_bytes(page.convert("RGB"), "JPEG", quality=90)
            width, height = page.width * 72 // dpi, page.height * 72 // dpi
            objects.append(
                b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
                % (page.width, page.height, len(data))
                + data
                + b"\nendstream"
            )
            content = b"q %d 0 0 %d 0 0 cm /Im1 Do Q" % (width, height)
            resources = b"/XObject << /Im1 %d 0 R >>" % len(objects)
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << %s >> /Contents %d 0 R >>"
            % (width, height, resources, len(objects))
        )
        kids.append(len(objects))
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    return _serialize(objects)


def table_pdf(rows: list[tuple[str, ...]], before: str, after: str, *, column_width: int = 150) -> bytes:
    """One page: a line of text, a table whose cells are placed one by one (as PDF writers do), a line of text."""
    ops = [f"BT /F1 11 Tf 60 790 Td ({_escaped(before)}) Tj ET"]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            ops.append(f"BT /F1 11 Tf {60 + c * column_width} {770 - r * 15} Td ({_escaped(cell)}) Tj ET")
    ops.append(f"BT /F1 11 Tf 60 {750 - len(rows) * 15} Td ({_escaped(after)}) Tj ET")
    content = " ".join(ops).encode()
    return _serialize(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents 4 0 R >>",
        ]
    )


def _escaped(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _serialize(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def cer(expected: str, got: str) -> float:
    """Character error rate: edit distance over the expected length, whitespace and width differences ignored."""
    want, have = _normal(expected), _normal(got)
    previous = list(range(len(have) + 1))
    for i, char in enumerate(want, start=1):
        current = [i]
        for j, other in enumerate(have, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1] / max(1, len(want))


def _normal(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
