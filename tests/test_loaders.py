"""Tests for server.loaders: every format built at test time, plus the real samples under ../shared."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.errors import DocumentLoadError, OcrUnavailable, UnsupportedFileType
from server.loaders import SUPPORTED_EXTENSIONS, LoadedFile, detect_encoding, load_file, read_text

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"sample documents not found at {SAMPLES}")

SIMPLIFIED = "知识库问答系统可以根据上传的文档回答问题。中文编码测试：汉字、标点，以及数字123。"
TRADITIONAL = "知識庫問答系統可以根據上傳的文件回答問題。繁體中文編碼測試：漢字、標點，以及數字。"


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def only_text(loaded: LoadedFile) -> str:
    assert len(loaded.docs) == 1
    return loaded.docs[0].page_content


# ---- encodings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (SIMPLIFIED.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + SIMPLIFIED.encode("utf-8"), "utf-8-sig"),
        (SIMPLIFIED.encode("utf-16"), "utf-16"),
        (SIMPLIFIED.encode("gbk"), "gb18030"),
        (SIMPLIFIED.encode("gb18030"), "gb18030"),
        (TRADITIONAL.encode("big5"), "big5"),
        ("中文测试".encode("gbk"), "gb18030"),
        ("中文測試".encode("big5"), "big5"),
        (b"plain ascii", "utf-8"),
    ],
)
def test_detect_encoding(data: bytes, expected: str) -> None:
    assert detect_encoding(data) == expected


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(SIMPLIFIED, "gbk"), (SIMPLIFIED, "utf-8-sig"), (SIMPLIFIED, "utf-16"), (TRADITIONAL, "big5")],
)
def test_read_text_decodes_and_normalises_newlines(tmp_path: Path, text: str, encoding: str) -> None:
    path = write(tmp_path / "a.txt", f"{text}\r\n第二行\r第三行\n".encode(encoding))
    assert read_text(path) == f"{text}\n第二行\n第三行\n"


def test_gbk_txt_loads_as_text(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path / "gbk.txt", SIMPLIFIED.encode("gbk")), source="kb/gbk.txt")
    assert loaded.loader == "TextLoader"
    assert loaded.docs[0].page_content == SIMPLIFIED
    assert loaded.docs[0].metadata == {"source": "kb/gbk.txt", "format": "text"}


def test_big5_txt_loads_traditional_text(tmp_path: Path) -> None:
    assert only_text(load_file(write(tmp_path / "b.txt", TRADITIONAL.encode("big5")))) == TRADITIONAL


# ---- plain-text family ---------------------------------------------------------------------------


def test_markdown_keeps_raw_text(tmp_path: Path) -> None:
    for name in ("a.md", "b.markdown"):
        loaded = load_file(write(tmp_path / name, "# 标题\n\n正文\n"))
        assert loaded.loader == "MarkdownLoader"
        assert loaded.docs[0].page_content == "# 标题\n\n正文\n"
        assert loaded.docs[0].metadata == {"source": name, "format": "markdown"}


def test_csv_rows_in_gbk(tmp_path: Path) -> None:
    data = "姓名,城市,年龄\r\n张三,北京,30\r\n\r\n李四,,25\r\n".encode("gbk")
    loaded = load_file(write(tmp_path / "people.csv", data))
    assert loaded.loader == "CsvLoader"
    assert [d.page_content for d in loaded.docs] == ["姓名: 张三\n城市: 北京\n年龄: 30", "姓名: 李四\n年龄: 25"]
    assert [d.metadata["row"] for d in loaded.docs] == [2, 4]


def test_json_is_pretty_printed(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path / "a.json", '{"问题":"什么是知库","n":[1,2]}'))
    assert loaded.loader == "JsonLoader"
    assert json.loads(only_text(loaded)) == {"问题": "什么是知库", "n": [1, 2]}
    assert "什么是知库" in only_text(loaded)  # ensure_ascii=False


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"bad\.json.*line 2, column 8"):
        load_file(write(tmp_path / "bad.json", '{"a": 1,\n  "b": }'))


def test_jsonl_records(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "第一条", "id": 7, "tags": ["x"], "source": "elsewhere"}, ensure_ascii=False),
        "",
        json.dumps({"content": "第二条"}, ensure_ascii=False),
        json.dumps({"title": "no text key"}),
        json.dumps("a bare string"),
    ]
    docs = load_file(write(tmp_path / "r.jsonl", "\n".join(lines)), source="kb/r.jsonl").docs
    assert [d.page_content for d in docs] == ["第一条", "第二条", '{"title": "no text key"}', "a bare string"]
    assert docs[0].metadata == {"id": 7, "source": "kb/r.jsonl", "line": 1, "format": "text"}
    assert [d.metadata["line"] for d in docs] == [1, 3, 4, 5]


def test_invalid_jsonl_line_is_named(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"r\.jsonl.*line 2"):
        load_file(write(tmp_path / "r.jsonl", '{"text": "ok"}\n{broken\n'))


# ---- errors common to all formats ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.txt", "empty.pdf", "empty.docx", "empty.json"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(DocumentLoadError, match=rf"{name}.*empty"):
        load_file(write(tmp_path / name, b""))


def test_whitespace_only_file_has_no_text(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"blank\.txt.*no text"):
        load_file(write(tmp_path / "blank.txt", "  \n\n "))


@pytest.mark.parametrize("name", ["bad.pdf", "bad.docx", "bad.pptx", "bad.xlsx", "bad.epub", "bad.doc"])
def test_corrupt_binary_formats(tmp_path: Path, name: str) -> None:
    with pytest.raises(DocumentLoadError, match=rf"{name}"):
        load_file(write(tmp_path / name, os.urandom(4096)))


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFileType, match=r"tool\.exe.*'\.exe'.*Supported types: .*\.pdf"):
        load_file(write(tmp_path / "tool.exe", b"MZ"))


def test_image_needs_ocr(tmp_path: Path) -> None:
    with pytest.raises(OcrUnavailable, match=r"scan\.PNG.*OCR"):
        load_file(write(tmp_path / "scan.PNG", b"\x89PNG"))
    with pytest.raises(UnsupportedFileType, match=r"anim\.gif.*PNG or JPEG"):
        load_file(write(tmp_path / "anim.gif", b"GIF89a"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"gone\.txt"):
        load_file(tmp_path / "gone.txt")


def test_supported_extensions() -> None:
    assert {".txt", ".md", ".pdf", ".docx", ".doc", ".pptx", ".xlsx", ".csv", ".epub", ".html"} <= (
        SUPPORTED_EXTENSIONS
    )
    assert all(ext == ext.lower() and ext.startswith(".") for ext in SUPPORTED_EXTENSIONS)


def test_importing_loaders_does_not_import_parsers() -> None:
    heavy = "{'pypdf', 'docx', 'pptx', 'openpyxl', 'ebooklib', 'lxml', 'charset_normalizer'}"
    code = f"import sys, server.loaders; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"


# ---- office formats ------------------------------------------------------------------------------


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("知库简介", level=1)
    document.add_paragraph("第一段正文。")
    document.add_heading("支持的格式", level=2)
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([["格式", "扩展名", "说明"], ["Word", ".docx", "段落和表格"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("表格之后的段落。")
    document.save(str(path))
    return path


def test_docx_headings_tables_in_order(tmp_path: Path) -> None:
    loaded = load_file(make_docx(tmp_path / "intro.docx"), source="kb/intro.docx")
    assert loaded.loader == "DocxLoader"
    assert only_text(loaded).split("\n") == [
        "# 知库简介",
        "第一段正文。",
        "## 支持的格式",
        "",
        "| 格式 | 扩展名 | 说明 |",
        "| --- | --- | --- |",
        "| Word | .docx | 段落和表格 |",
        "",
        "表格之后的段落。",
    ]
    assert loaded.docs[0].metadata == {"source": "kb/intro.docx", "format": "markdown"}


def test_docx_chinese_heading_style_names(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.styles["Heading 2"].name = "标题 2"
    document.add_paragraph("中文样式标题", style="标题 2")
    document.add_paragraph("正文")
    document.save(str(tmp_path / "zh.docx"))
    assert only_text(load_file(tmp_path / "zh.docx")) == "## 中文样式标题\n正文"


def test_pptx_one_document_per_slide(tmp_path: Path) -> None:
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[1])
    first.shapes.title.text = "第一页标题"
    first.placeholders[1].text = "要点一"
    first.notes_slide.notes_text_frame.text = "演讲备注"
    presentation.slides.add_slide(presentation.slide_layouts[6])  # blank: skipped
    third = presentation.slides.add_slide(presentation.slide_layouts[6])
    shape = third.shapes.add_table(2, 2, Inches(1), Inches(1), Inches(4), Inches(1))
    for r, c, value in [(0, 0, "名称"), (0, 1, "数量"), (1, 0, "苹果"), (1, 1, "3")]:
        shape.table.cell(r, c).text = value
    presentation.save(str(tmp_path / "deck.pptx"))

    loaded = load_file(tmp_path / "deck.pptx")
    assert loaded.loader == "PptxLoader"
    assert [d.metadata["page"] for d in loaded.docs] == [1, 3]
    assert loaded.docs[0].page_content == "第一页标题\n要点一\nNotes: 演讲备注"
    assert loaded.docs[1].page_content == "| 名称 | 数量 |\n| --- | --- |\n| 苹果 | 3 |"


def test_xlsx_rows_with_headers(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "名单"
    sheet.append([])
    sheet.append(["姓名", "分数", None])
    sheet.append(["张三", 90.0, "备注"])
    sheet.append([None, None, None])
    sheet.append(["李四", 85.5, None])
    workbook.create_sheet("空表")
    workbook.save(tmp_path / "scores.xlsx")

    loaded = load_file(tmp_path / "scores.xlsx")
    assert loaded.loader == "XlsxLoader"
    assert [d.page_content for d in loaded.docs] == ["姓名: 张三\n分数: 90\ncolumn 3: 备注", "姓名: 李四\n分数: 85.5"]
    assert [(d.metadata["sheet"], d.metadata["row"]) for d in loaded.docs] == [("名单", 3), ("名单", 5)]


# ---- html and epub -------------------------------------------------------------------------------

PAGE = """<html><head><meta charset="gbk"><title>知库页面</title><style>p {color: red}</style></head>
<body><nav>首页 | 关于</nav><script>var x = 1;</script>
<h1>大标题</h1><p>第一段 <b>加粗</b> 文字。</p><h2>小标题</h2><ul><li>条目一</li><li>条目二</li></ul>
<table><tr><th>列一</th><th>列二</th></tr><tr><td>甲</td><td>乙</td></tr></table><!-- 注释 --></body></html>"""


def test_html_to_markdown_with_meta_charset(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path / "page.htm", PAGE.encode("gbk")))
    assert loaded.loader == "HtmlLoader"
    assert only_text(loaded).split("\n") == [
        "# 大标题",
        "第一段 加粗 文字。",
        "## 小标题",
        "- 条目一",
        "- 条目二",
        "",
        "| 列一 | 列二 |",
        "| --- | --- |",
        "| 甲 | 乙 |",
    ]
    assert loaded.docs[0].metadata == {"source": "page.htm", "format": "markdown", "title": "知库页面"}


def test_html_without_charset_is_detected(tmp_path: Path) -> None:
    page = "<html><body><p>" + TRADITIONAL + "</p></body></html>"
    assert only_text(load_file(write(tmp_path / "t.html", page.encode("big5")))) == TRADITIONAL


def test_xhtml_with_an_encoding_declaration(tmp_path: Path) -> None:
    page = '<?xml version="1.0" encoding="gb18030"?>\n<html><body><pre>  代码\n  缩进</pre><p>说明</p></body></html>'
    loaded = load_file(write(tmp_path / "x.html", page.encode("gb18030")))
    assert only_text(loaded) == "代码\n  缩进\n说明"


def test_html_of_only_comments_has_no_text(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match="no text could be extracted"):
        load_file(write(tmp_path / "empty.html", "<!-- 只有注释 -->\n"))


def make_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("zhiku-test")
    book.set_title("测试书")
    book.set_language("zh")
    chapters = []
    for number, (title, body) in enumerate([("第一章", "开始的故事。"), ("第二章", "后来的故事。")], start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"c{number}.xhtml", lang="zh")
        chapter.content = f"<html><body><h1>{title}</h1><p>{body}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)
    return path


def test_epub_one_document_per_chapter(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    loaded = load_file(make_epub(tmp_path / "book.epub"))
    assert loaded.loader == "EpubLoader"
    assert [d.page_content for d in loaded.docs] == ["# 第一章\n开始的故事。", "# 第二章\n后来的故事。"]
    assert [(d.metadata["page"], d.metadata["title"]) for d in loaded.docs] == [(1, "第一章"), (2, "第二章")]
    assert not [w for w in recwarn if "ebooklib" in str(w.filename)]


# ---- pdf and legacy .doc (real files) ------------------------------------------------------------


@pytest.mark.integration
@needs_samples
def test_pdf_pages_are_numbered() -> None:
    loaded = load_file(SAMPLES / "kb-samples" / "test_files" / "langchain.pdf", source="t/langchain.pdf")
    assert loaded.loader == "PdfLoader"
    pages = [d.metadata["page"] for d in loaded.docs]
    assert pages == sorted(pages) and pages[0] == 1 and len(pages) > 1
    assert all(d.metadata["source"] == "t/langchain.pdf" and d.page_content.strip() for d in loaded.docs)


@pytest.mark.integration
@needs_samples
def test_small_chinese_pdf() -> None:
    assert "我是文字" in load_file(SAMPLES / "formats" / "ocr_test.pdf").docs[0].page_content


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with (tmp_path / "scan.pdf").open("wb") as handle:
        writer.write(handle)
    with pytest.raises(DocumentLoadError, match=r"scan\.pdf.*no text layer.*OCR"):
        load_file(tmp_path / "scan.pdf")


def zh_doc_files() -> list[Path]:
    return sorted((SAMPLES / "zh-docx").glob("*.doc")) if SAMPLES.is_dir() else []


@pytest.mark.integration
@needs_samples
@pytest.mark.parametrize("path", zh_doc_files(), ids=lambda p: p.name[:24])
def test_legacy_doc_matches_its_docx(path: Path) -> None:
    loaded = load_file(path)
    assert loaded.loader == "DocLoader"
    text = only_text(loaded)
    twin = path.with_suffix(".docx")
    if twin.exists():
        reference = "".join(only_text(load_file(twin)).split()).replace("#", "")
        assert abs(len("".join(text.split())) - len(reference)) < 0.15 * len(reference)
    assert "核电厂" in text


@pytest.mark.integration
@needs_samples
@pytest.mark.skipif(shutil.which("antiword") is None, reason="antiword is not installed")
def test_antiword_fallback_converts() -> None:
    from server.loaders.legacy_doc import _convert
    from server.loaders.limits import Budget

    path = SAMPLES / "zh-docx" / "行标编制说明（核电厂定期安全审查 第1部分：通用要求）.doc"
    assert "核电厂" in _convert(path, path.name, "test", Budget(None, path.name))


def test_doc_that_is_really_html(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path / "web.doc", "<html><body><p>网页另存为</p></body></html>"))
    assert only_text(loaded) == "网页另存为"


def test_doc_that_is_really_docx(tmp_path: Path) -> None:
    shutil.copy(make_docx(tmp_path / "real.docx"), tmp_path / "renamed.doc")
    assert only_text(load_file(tmp_path / "renamed.doc")).startswith("# 知库简介")


# ---- every real sample ---------------------------------------------------------------------------


@pytest.mark.integration
@needs_samples
def test_every_sample_loads_or_fails_clearly() -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    assert files
    for path in files:
        source = str(path.relative_to(SAMPLES))
        try:
            loaded = load_file(path, source=source)
        except (UnsupportedFileType, DocumentLoadError, OcrUnavailable) as err:
            assert path.name in str(err)
            continue
        assert loaded.docs and any(d.page_content.strip() for d in loaded.docs), source
        assert all(d.metadata["source"] == source for d in loaded.docs)


def test_binary_bytes_in_text_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentLoadError, match=r"data\.txt.*binary"):
        load_file(write(tmp_path / "data.txt", b"\x00\x01\x02abc" * 100))


def test_unreadable_ole_doc_without_converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.loaders import legacy_doc
    from server.loaders.cfb import OLE_MAGIC

    monkeypatch.setattr(legacy_doc.shutil, "which", lambda _name: None)
    with pytest.raises(UnsupportedFileType, match=r"old\.doc.*LibreOffice or antiword.*\.docx"):
        load_file(write(tmp_path / "old.doc", OLE_MAGIC + bytes(2048)))


def test_a_man_page_reads_as_headed_text(tmp_path: Path) -> None:
    page = tmp_path / "ls.1.man"
    page.write_text(
        '.\\" generated\n.TH LS 1 "2023" "GNU"\n.SH NAME\nls \\- 列出目录内容\n.SH "SEE ALSO"\n'
        ".TP\n\\fB\\-a\\fR, \\fB\\-\\-all\\fR\n不要忽略以 . 开头的条目 \\(em 全部列出\n.BR dir (1)\n",
        encoding="utf-8",
    )
    loaded = load_file(page, source="man/ls.1.man")
    text = loaded.docs[0].page_content
    assert loaded.loader == "ManPageLoader"
    assert text.startswith("# LS(1)") and "## Name\nls - 列出目录内容" in text and "## See Also" in text
    assert "-a, --all" in text and "— 全部列出" in text and "dir(1)" in text and "\\f" not in text
