"""Tables stay tables: in docx, HTML and Markdown a table longer than chunk_size is split between rows with its
header on every chunk (and kept whole when it fits); spreadsheets (.xlsx, legacy .xls) keep the right headers when
a title stands above them, merged cells and empty rows, with the sheet name and row number in each record."""

from __future__ import annotations

from pathlib import Path

import docx
import openpyxl
import pytest
from ocr_docs import table_pdf

from server.documents import Document
from server.loaders import load_file
from server.splitter import chunk_length, split_documents

CHUNK = 120
HEADER = "| 产品 | 单价 | 说明 |"
ROWS = [(f"型号{i:02d}", f"{100 + i} 元", f"第{i}行的说明，含有足够多的文字") for i in range(30)]


def chunks_of(path: Path, chunk_size: int = CHUNK) -> list[Document]:
    return split_documents(load_file(path).docs, chunk_size=chunk_size, chunk_overlap=20)


def table_chunks(chunks: list[Document]) -> list[Document]:
    return [chunk for chunk in chunks if chunk.metadata.get("table")]


def assert_split_between_rows(chunks: list[Document]) -> None:
    tables = table_chunks(chunks)
    assert len(tables) > 1
    seen = []
    for chunk in tables:
        lines = chunk.page_content.split("\n")
        assert lines[0] == HEADER and lines[1].startswith("| ---"), chunk.page_content
        assert chunk_length(chunk.page_content) <= CHUNK
        seen.extend(lines[2:])
    assert seen == [f"| {a} | {b} | {c} |" for a, b, c in ROWS]  # every row once, whole, in order
    prose = " ".join(chunk.page_content for chunk in chunks if not chunk.metadata.get("table"))
    assert "表格之前" in prose and "表格之后" in prose


def make_docx(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    document = docx.Document()
    document.add_paragraph("表格之前的说明。")
    table = document.add_table(rows=len(rows) + 1, cols=3)
    for c, value in enumerate(["产品", "单价", "说明"]):
        table.cell(0, c).text = value
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("表格之后的说明。")
    document.save(str(path))
    return path


def html_page(rows: list[tuple[str, str, str]]) -> str:
    body = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows)
    return (
        "<html><body><p>表格之前的说明。</p><table><thead><tr><th>产品</th><th>单价</th><th>说明</th></tr></thead>"
        f"<tbody>{body}</tbody></table><p>表格之后的说明。</p></body></html>"
    )


def markdown(rows: list[tuple[str, str, str]]) -> str:
    lines = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"# 价目\n\n表格之前的说明。\n\n{HEADER}\n| --- | --- | --- |\n{lines}\n\n表格之后的说明。\n"


def test_docx_table_longer_than_a_chunk(tmp_path: Path) -> None:
    assert_split_between_rows(chunks_of(make_docx(tmp_path / "prices.docx", ROWS)))


def test_html_table_longer_than_a_chunk(tmp_path: Path) -> None:
    path = tmp_path / "prices.html"
    path.write_text(html_page(ROWS), encoding="utf-8")
    assert_split_between_rows(chunks_of(path))


def test_markdown_table_longer_than_a_chunk(tmp_path: Path) -> None:
    path = tmp_path / "prices.md"
    path.write_text(markdown(ROWS), encoding="utf-8")
    chunks = chunks_of(path)
    assert_split_between_rows(chunks)
    assert all(chunk.metadata["headings"] == "价目" for chunk in table_chunks(chunks))


@pytest.mark.parametrize("kind", ["docx", "html", "md"])
def test_a_table_that_fits_stays_whole_in_one_chunk(tmp_path: Path, kind: str) -> None:
    rows = ROWS[:3]
    path = tmp_path / f"short.{kind}"
    if kind == "docx":
        make_docx(path, rows)
    else:
        path.write_text(html_page(rows) if kind == "html" else markdown(rows), encoding="utf-8")
    (table,) = table_chunks(chunks_of(path, chunk_size=400))
    body = [f"| {a} | {b} | {c} |" for a, b, c in rows]
    assert table.page_content.split("\n") == [HEADER, "| --- | --- | --- |", *body]


def test_a_row_longer_than_a_chunk_is_cut_under_the_header(tmp_path: Path) -> None:
    long_row = ("型号长", "1 元", "很长的说明" * 60)
    path = tmp_path / "long.md"
    path.write_text(markdown([ROWS[0], long_row]), encoding="utf-8")
    tables = table_chunks(chunks_of(path))
    assert len(tables) >= 3 and all(chunk.page_content.startswith(HEADER + "\n| ---") for chunk in tables)
    assert all(chunk_length(chunk.page_content) <= CHUNK for chunk in tables)


def test_docx_merged_cells_read_under_each_column(tmp_path: Path) -> None:
    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["地区", "季度", "销量"], ["华东", "一季度", "10"], ["", "二季度", "12"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(1, 0).merge(table.cell(2, 0))  # 华东 spans two rows
    document.save(str(tmp_path / "merged.docx"))
    text = load_file(tmp_path / "merged.docx").docs[0].page_content
    assert "| 华东 | 一季度 | 10 |" in text and "| 华东 | 二季度 | 12 |" in text, text


def test_pdf_text_table_longer_than_a_chunk(tmp_path: Path) -> None:
    rows = [
        ("Product", "Price", "Notes"),
        *((f"Model{i:02d}", f"{100 + i} yuan", f"row {i} in stock") for i in range(30)),
    ]
    path = tmp_path / "prices.pdf"
    path.write_bytes(table_pdf(rows, "Before the table", "After the table"))
    chunks = chunks_of(path)
    tables = table_chunks(chunks)
    assert len(tables) > 1
    seen = []
    for chunk in tables:
        lines = chunk.page_content.split("\n")
        assert lines[0] == "| Product | Price | Notes |" and lines[1].startswith("| ---"), chunk.page_content
        assert chunk_length(chunk.page_content) <= CHUNK and chunk.metadata["page"] == 1
        seen.extend(lines[2:])
    assert seen == [f"| {a} | {b} | {c} |" for a, b, c in rows[1:]]
    prose = " ".join(chunk.page_content for chunk in chunks if not chunk.metadata.get("table"))
    assert "Before the table" in prose and "After the table" in prose


def test_pdf_two_column_prose_is_not_a_table(tmp_path: Path) -> None:
    left = "a line of prose in the left column of a paper"
    right = "and a line of prose in the right column beside it"
    path = tmp_path / "paper.pdf"
    path.write_bytes(table_pdf([(left, right)] * 12, "Title of the paper", "End", column_width=260))
    text = load_file(path).docs[0].page_content
    assert "| ---" not in text and left in text and right in text


# ---- spreadsheets --------------------------------------------------------------------------------------------


def test_xlsx_title_above_the_header_merged_cells_and_empty_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "销售"
    sheet.append(["2026 年销售报表"])
    sheet.merge_cells("A1:C1")
    sheet.append(["单位：万元"])
    sheet.append([])
    sheet.append(["地区", "季度", "销量"])
    sheet.append(["华东", "一季度", 10])
    sheet.append([None, "二季度", 12])
    sheet.merge_cells("A5:A6")
    sheet.append([])
    sheet.append(["华南", "一季度", 8])
    workbook.save(tmp_path / "sales.xlsx")
    loaded = load_file(tmp_path / "sales.xlsx")
    assert [doc.page_content for doc in loaded.docs] == [
        "地区: 华东\n季度: 一季度\n销量: 10",
        "地区: 华东\n季度: 二季度\n销量: 12",
        "地区: 华南\n季度: 一季度\n销量: 8",
    ]
    places = [(doc.metadata["sheet"], doc.metadata["row"]) for doc in loaded.docs]
    assert places == [("销售", 5), ("销售", 6), ("销售", 8)]
    assert all(doc.metadata["table_title"] == "2026 年销售报表 单位：万元" for doc in loaded.docs)


def test_legacy_xls_rows_keep_their_headers(tmp_path: Path) -> None:
    import datetime as dt

    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("名单")
    sheet.write_merge(0, 0, 0, 2, "员工名单")
    for c, value in enumerate(["姓名", "入职", "部门"]):
        sheet.write(1, c, value)
    dates = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    sheet.write(2, 0, "张三")
    sheet.write(2, 1, dt.datetime(2024, 3, 1), dates)
    sheet.write_merge(2, 3, 2, 2, "研发部")
    sheet.write(3, 0, "李四")
    sheet.write(3, 1, 2.0)
    book.add_sheet("空表")
    book.save(str(tmp_path / "staff.xls"))
    loaded = load_file(tmp_path / "staff.xls")
    assert loaded.loader == "XlsLoader"
    assert [doc.page_content for doc in loaded.docs] == [
        "姓名: 张三\n入职: 2024-03-01T00:00:00\n部门: 研发部",
        "姓名: 李四\n入职: 2\n部门: 研发部",
    ]
    assert [(doc.metadata["sheet"], doc.metadata["row"]) for doc in loaded.docs] == [("名单", 3), ("名单", 4)]
    assert loaded.docs[0].metadata["table_title"] == "员工名单"


def test_corrupt_xls_fails_clearly(tmp_path: Path) -> None:
    from server.errors import DocumentLoadError

    (tmp_path / "bad.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(DocumentLoadError, match=r"bad\.xls.*\.xls"):
        load_file(tmp_path / "bad.xls")
