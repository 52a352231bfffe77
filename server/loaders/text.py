"""Plain-text family: .txt, .md, .csv, .json, .jsonl."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from server.documents import Document
from server.errors import DocumentLoadError
from server.loaders._common import make_doc, row_documents
from server.loaders.encoding import read_text
from server.loaders.limits import Budget

_CONTENT_KEYS = ("text", "content", "page_content")
_SCALARS = (str, int, float, bool)


def load_txt(path: Path, source: str, budget: Budget) -> list[Document]:
    text = read_text(path)
    return [make_doc(text, source, format="text")] if text.strip() else []


def load_markdown(path: Path, source: str, budget: Budget) -> list[Document]:
    text = read_text(path)
    return [make_doc(text, source, format="markdown")] if text.strip() else []


def load_csv(path: Path, source: str, budget: Budget) -> list[Document]:
    text = read_text(path)
    budget.check_text(len(text))
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
            budget.row(len(rows))
    except csv.Error as err:
        raise DocumentLoadError(
            f"{source}: malformed CSV near line {reader.line_num} ({err}); fix the quoting or save it again"
        ) from err
    return row_documents(rows, source, budget, format="text")


def load_json(path: Path, source: str, budget: Budget) -> list[Document]:
    text = read_text(path)
    budget.check_text(len(text))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise DocumentLoadError(
            f"{source}: invalid JSON at line {err.lineno}, column {err.colno} ({err.msg}); fix the file"
        ) from err
    return [make_doc(json.dumps(value, ensure_ascii=False, indent=2), source, format="text")]


def load_jsonl(path: Path, source: str, budget: Budget) -> list[Document]:
    docs: list[Document] = []
    text = read_text(path)
    budget.check_text(len(text))
    for number, line in enumerate(text.split("\n"), start=1):
        budget.row(number)
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise DocumentLoadError(
                f"{source}: invalid JSON on line {number}, column {err.colno} ({err.msg}); "
                "each line of a .jsonl file must be one JSON value"
            ) from err
        doc = _record_document(value, source, number)
        if doc is not None:
            docs.append(doc)
    return docs


def _record_document(value: Any, source: str, line: int) -> Document | None:
    if isinstance(value, str):
        return make_doc(value, source, line=line, format="text") if value.strip() else None
    if not isinstance(value, dict):
        return make_doc(json.dumps(value, ensure_ascii=False), source, line=line, format="text")
    key = next((k for k in _CONTENT_KEYS if isinstance(value.get(k), str)), None)
    if key is None:
        return make_doc(json.dumps(value, ensure_ascii=False), source, line=line, format="text")
    if not value[key].strip():
        return None
    extra = {k: v for k, v in value.items() if k != key and isinstance(v, _SCALARS)}
    # The record's own keys are kept, but "source" and "line" always describe where the text came from.
    return Document(page_content=value[key], metadata={**extra, "source": source, "line": line, "format": "text"})
