"""FAQ files: question–answer pairs, several phrasings of the question per answer.

A KB stores a FAQ as `<name>.faq.jsonl`, one entry per line: {"id", "questions", "answer"}. Each phrasing becomes
one chunk: the question, then the answer (the answer's words help find it: with the bundled model, top-1 accuracy
on bench/data/faq rises from 0.69 with the question alone to 0.85), and its metadata holds the question and the
answer apart, so KB chat can give the answer as it is. `read_pairs` turns what users have (CSV, XLSX, JSON
or JSONL with question and answer columns or keys) into entries; `dump_entries` writes the stored form.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.documents import Document
from server.errors import InvalidFaq
from server.loaders._common import cell_text
from server.loaders.encoding import read_text
from server.loaders.limits import Budget

FAQ_SUFFIX = ".faq.jsonl"
FAQ_LOADER = "FaqLoader"
FAQ_FORMATS = (".csv", ".xlsx", ".json", ".jsonl")

_QUESTION = re.compile(r"^(questions?|q|问题|问|标准问题|问法)\s*\d*$")
_SIMILAR = re.compile(
    r"^(similar[ _]?questions?|similar|alternatives?|paraphrases?|相似问题|相似问法|其他问法|同义问题)$"
)
_ANSWER = re.compile(r"^(answers?|a|答案|回答|答|回复)$")
_ID = re.compile(r"^(id|编号|序号)$")
_PHRASING_SEPARATORS = re.compile(r"\s*(?:\n|\||｜)\s*")
_MAX_PROBLEMS = 5


@dataclass(frozen=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class FaqLimits:
    max_entries: int = 50_000
    max_phrasings: int = 50  # questions of one entry
    max_question_chars: int = 500
    max_answer_chars: int = 10_000


_STORED = FaqLimits(max_entries=10**6, max_phrasings=10**4, max_question_chars=10**5, max_answer_chars=10**7)
"""A stored FAQ was checked against the configured limits when imported; read back, only the loader's budget
(characters per file, chunks per file) bounds it, so lowering a limit never makes a stored FAQ unreadable."""


def faq_name(file_name: str) -> str:
    """The name a FAQ is stored under in the KB: `manual.csv` → `manual.faq.jsonl`."""
    if file_name.lower().endswith(FAQ_SUFFIX):
        return file_name
    return str(Path(file_name).with_suffix("")) + FAQ_SUFFIX


def is_faq(file_name: str) -> bool:
    return file_name.lower().endswith(FAQ_SUFFIX)


def load_faq(path: Path, source: str, budget: Budget) -> list[Document]:
    """The loader of stored FAQs: one Document per phrasing, the answer in its metadata (kept whole: not split)."""
    text = read_text(path)
    budget.check_text(len(text))
    entries = checked(_json_lines(text, source), _STORED, source)
    return [
        Document(f"{question}\n{entry.answer}", _metadata(source, entry, question))
        for entry in entries
        for question in entry.questions
    ]


def read_stored(path: Path, source: str) -> list[FaqEntry]:
    """The entries of a stored `.faq.jsonl`."""
    return checked(_json_lines(read_text(path), source), _STORED, source)


def _metadata(source: str, entry: FaqEntry, question: str) -> dict[str, Any]:
    return {"source": source, "faq_id": entry.id, "question": question, "answer": entry.answer}


def read_pairs(path: Path, source: str, limits: FaqLimits) -> list[FaqEntry]:
    """The entries of a FAQ as users keep it: CSV or XLSX with a header row naming the question, similar-question
    and answer columns (English or Chinese names), or JSON / JSONL objects with those keys."""
    suffix = path.suffix.lower()
    if suffix not in FAQ_FORMATS:
        raise InvalidFaq(f"{source}: a FAQ is read from {', '.join(FAQ_FORMATS)}, not {suffix or 'no extension'}")
    if suffix == ".xlsx":
        raw = _table_entries(_xlsx_rows(path, source), source)
    elif suffix == ".csv":
        raw = _table_entries(_csv_rows(read_text(path), source), source)
    elif suffix == ".json":
        raw = _json_entries(read_text(path), source)
    else:
        raw = _json_lines(read_text(path), source)
    return checked(raw, limits, source)


def dump_entries(entries: Sequence[FaqEntry]) -> bytes:
    lines = (
        json.dumps({"id": entry.id, "questions": list(entry.questions), "answer": entry.answer}, ensure_ascii=False)
        for entry in entries
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def entry_from(value: object, where: str) -> FaqEntry:
    """One entry from a JSON object: `question` (text or list), `questions`, similar questions, `answer`, `id`."""
    if not isinstance(value, dict):
        raise InvalidFaq(f"{where}: expected an object with a question and an answer, got {type(value).__name__}")
    questions: list[str] = []
    answer, entry_id = "", ""
    for key, item in value.items():
        name = str(key).strip().lower()
        if _QUESTION.match(name) or _SIMILAR.match(name):
            questions.extend(_phrasings(item, split=not _QUESTION.match(name)))
        elif _ANSWER.match(name):
            answer = cell_text(item) if not isinstance(item, list | dict) else ""
        elif _ID.match(name):
            entry_id = cell_text(item)
    return FaqEntry(entry_id, tuple(questions), answer)


def checked(entries: Iterable[FaqEntry], limits: FaqLimits, source: str) -> list[FaqEntry]:
    """Entries with ids given to those without, duplicates removed, checked against `limits`; raises InvalidFaq
    naming the first problems."""
    result: list[FaqEntry] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for number, entry in enumerate(entries, start=1):
        if number > limits.max_entries:
            raise InvalidFaq(f"{source}: more than {limits.max_entries:,} entries; split the FAQ into several files")
        problem = _problem(entry, limits, seen)
        if problem:
            problems.append(f"entry {number}: {problem}")
            if len(problems) >= _MAX_PROBLEMS:
                break
            continue
        questions = tuple(dict.fromkeys(entry.questions))
        seen.update((question, entry.answer) for question in questions)
        result.append(FaqEntry(entry.id or str(number), questions, entry.answer))
    if problems:
        raise InvalidFaq(f"{source}: {'; '.join(problems)}; fix these and import it again")
    if not result:
        raise InvalidFaq(f"{source}: no question–answer pair found; see docs/faq.md for the columns read")
    _check_ids(result, source)
    return result


def _problem(entry: FaqEntry, limits: FaqLimits, seen: dict[str, str]) -> str:
    if not entry.questions:
        return "no question"
    if not entry.answer.strip():
        return f"no answer for {entry.questions[0][:60]!r}"
    if len(entry.questions) > limits.max_phrasings:
        return f"{len(entry.questions)} phrasings, more than {limits.max_phrasings}"
    if len(entry.answer) > limits.max_answer_chars:
        return f"the answer has {len(entry.answer):,} characters, more than {limits.max_answer_chars:,}"
    for question in entry.questions:
        if len(question) > limits.max_question_chars:
            return f"a question of {len(question):,} characters, more than {limits.max_question_chars}"
        if seen.get(question, entry.answer) != entry.answer:
            return f"the question {question[:60]!r} is also asked with another answer"
    return ""


def _check_ids(entries: Sequence[FaqEntry], source: str) -> None:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.id] = counts.get(entry.id, 0) + 1
    twice = [entry_id for entry_id, count in counts.items() if count > 1]
    if twice:
        raise InvalidFaq(f"{source}: the id {twice[0]!r} is given to {counts[twice[0]]} entries; ids must be unique")


def _phrasings(value: object, *, split: bool) -> list[str]:
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, dict | list):
            continue
        text = cell_text(item)
        pieces = _PHRASING_SEPARATORS.split(text) if split else [" ".join(text.split())]
        found.extend(piece for piece in pieces if piece)
    return found


def _table_entries(rows: Iterator[list[str]], source: str) -> Iterator[FaqEntry]:
    header = next((row for row in rows if any(row)), None)
    if header is None:
        return
    names = [cell.strip().lower() for cell in header]
    if not any(_QUESTION.match(name) for name in names) or not any(_ANSWER.match(name) for name in names):
        raise InvalidFaq(
            f"{source}: the first row must name a question column (question, 问题) and an answer column "
            f"(answer, 答案); found {', '.join(repr(cell) for cell in header if cell) or 'nothing'}"
        )
    for row in rows:
        if any(row):
            yield entry_from(dict(zip(_unique(names), row, strict=False)), source)


def _unique(names: Sequence[str]) -> list[str]:
    """Header names made unique ("问题", "问题" → "问题", "问题 2") so no column hides another."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return result


def _csv_rows(text: str, source: str) -> Iterator[list[str]]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as err:
        raise InvalidFaq(f"{source}: malformed CSV near line {reader.line_num} ({err}); fix the quoting") from err


def _xlsx_rows(path: Path, source: str) -> Iterator[list[str]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many kinds for a damaged package; all mean the same to the user
        raise InvalidFaq(f"{source}: cannot open as Excel .xlsx ({type(err).__name__}); re-save it") from err
    try:
        for row in workbook.worksheets[0].iter_rows(values_only=True):
            yield [cell_text(value) for value in row]
    finally:
        workbook.close()


def _json_entries(text: str, source: str) -> Iterator[FaqEntry]:
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidFaq(f"{source}: invalid JSON at line {err.lineno}, column {err.colno} ({err.msg})") from err
    if isinstance(value, dict):
        value = next((value[key] for key in ("faq", "items", "data") if isinstance(value.get(key), list)), None)
    if not isinstance(value, list):
        raise InvalidFaq(f'{source}: expected a list of {{"question", "answer"}} objects (or {{"faq": [...]}})')
    for index, item in enumerate(value, start=1):
        yield entry_from(item, f"{source}: item {index}")


def _json_lines(text: str, source: str) -> Iterator[FaqEntry]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidFaq(f"{source}: invalid JSON on line {number} ({err.msg}); one object per line") from err
        yield entry_from(value, f"{source}: line {number}")
