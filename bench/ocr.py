"""OCR throughput on scan-like pages, and what the OCR check costs a PDF that has a text layer.

    python -m bench.ocr [--pages 8] [--workers 2] [--text-pages 200] [--runs 5]

1. An image-only PDF of `--pages` A4 pages at 150 dpi, each with 30 lines of Chinese and English in 12-point type
   (drawn with PIL in WenQuanYi Micro Hei), goes through the PDF loader with OCR in a pool of `--workers`
   processes: pages per second once the models are loaded (the first, cold run is reported apart), and the
   character error rate.
2. A text-layer PDF of `--text-pages` pages goes through the loader as it was before OCR (pypdf page text only)
   and through today's loader with ocr: auto (the same, plus the page-count check, the table check of each page and
   the decision that it needs no OCR): the median CPU time of `--runs` runs each (CPU time: wall time on a shared
   machine measures the neighbours); then the same for a real two-column paper from ../shared/samples.
   Target: under 5 % more.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import SHARED
from server.loaders import load_file
from server.loaders._common import clean_text
from server.ocr import OcrOptions, OcrService
from tests.ocr_docs import a4_page, cer, pdf_of

PAPER = SHARED / "samples" / "kb-samples" / "test_files" / "langchain.pdf"
ZH = "知识库问答系统读取扫描的合同与发票，请在三十日内完成付款"
EN = "Offline OCR reads scanned pages in reading order 2026"


def page_lines(page: int) -> list[str]:
    return [f"{ZH}{page}-{line}" if line % 2 == 0 else f"{EN} p{page} l{line}" for line in range(30)]


def scanned_pdf(out: Path, pages: int) -> tuple[Path, str]:
    images = [a4_page(page_lines(number), dpi=150, points=12.0) for number in range(1, pages + 1)]
    path = out / "scanned.pdf"
    path.write_bytes(pdf_of(list(images), dpi=150))
    expected = "\n".join("\n".join(page_lines(number)) for number in range(1, pages + 1))
    return path, expected


def text_pdf(out: Path, pages: int) -> Path:
    body = "\n".join(f"Line {line}: a text layer page of a report, searchable as it is." for line in range(45))
    path = out / "text.pdf"
    path.write_bytes(pdf_of([f"Page {number}\n{body}" for number in range(pages)]))
    return path


def loader_before_ocr(path: Path) -> int:
    """What the PDF loader did before OCR: pypdf's text of every page, cleaned."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    return sum(len(clean_text(page.extract_text() or "")) for page in reader.pages)


def measure_ocr(path: Path, expected: str, pages: int, workers: int) -> None:
    children = _children_cpu()
    service = OcrService(OcrOptions(), workers=workers)
    try:
        started = time.perf_counter()
        cold = load_file(path, ocr=service.for_file())
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = load_file(path, ocr=service.for_file())
        warm_s = time.perf_counter() - started
    finally:
        service.close()  # the workers end, so their CPU time is counted below
    per_page = (_children_cpu() - children) / (2 * pages)
    got = "\n".join(doc.page_content for doc in warm.docs)
    assert len(cold.docs) == pages
    print(f"OCR, {pages} A4 pages at 150 dpi, {workers} workers: cold {cold_s:.1f} s (models loading), ", end="")
    print(f"warm {warm_s:.1f} s = {pages / warm_s:.2f} pages/s; CER {cer(expected, got):.2%}")
    print(f"  worker CPU per page {per_page:.1f} s (model loading included): {workers / per_page:.2f} pages/s ", end="")
    print(f"on {workers} idle cores")


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure_check(path: Path, label: str, runs: int) -> None:
    service = OcrService(OcrOptions(), workers=1)
    try:
        before, after = [], []
        for _ in range(runs):
            started = time.process_time()
            loader_before_ocr(path)
            before.append(time.process_time() - started)
            started = time.process_time()
            loaded = load_file(path, ocr=service.for_file())
            after.append(time.process_time() - started)
            assert not loaded.ocr
    finally:
        service.close()
    old, new = statistics.median(before), statistics.median(after)
    print(f"{label}: before OCR {old * 1000:.0f} ms CPU, with ocr: auto {new * 1000:.0f} ms CPU ", end="")
    print(f"({(new / old - 1):+.1%}; target < +5 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--text-pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zhiku-bench-ocr-") as tmp:
        out = Path(tmp)
        path, expected = scanned_pdf(out, args.pages)
        measure_ocr(path, expected, args.pages, args.workers)
        measure_check(text_pdf(out, args.text_pages), f"text-layer PDF, {args.text_pages} pages", args.runs)
        if PAPER.is_file():
            measure_check(PAPER, "a real two-column paper (8 pages, ../shared/samples)", args.runs)


if __name__ == "__main__":
    main()
