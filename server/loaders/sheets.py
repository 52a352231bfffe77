"""Spreadsheet loaders: .xlsx (openpyxl, read-only) and legacy .xls (xlrd). Each non-empty row becomes a
"header: value" record (server/loaders/_common.row_documents) with the sheet name and row number in its metadata;
a merged cell's value stands in every cell it covers, so merged headers and merged row labels are not lost."""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from server.documents import Document
from server.errors import DocumentLoadError
from server.loaders._common import row_documents
from server.loaders.limits import Budget

Merge = tuple[int, int, int, int]  # first row, last row, first column, last column: 1-based, inclusive
_MAX_MERGES = 10_000  # merged ranges honoured per sheet; past that, cells stay as stored
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _corrupt(source: str, kind: str, err: BaseException) -> DocumentLoadError:
    return DocumentLoadError(
        f"{source}: cannot open as {kind} ({type(err).__name__}: {err}); the file is corrupt, encrypted or not a "
        f"valid {kind} file; open and re-save it in an office suite"
    )


def fill_merged(
    rows: Iterable[tuple[int, Sequence[object]]], merges: Sequence[Merge]
) -> Iterator[tuple[int, list[object]]]:
    """The rows with each merged range's top-left value copied into all of its cells."""
    starting: dict[int, list[Merge]] = {}
    for merge in merges[:_MAX_MERGES]:
        starting.setdefault(merge[0], []).append(merge)
    active: list[tuple[Merge, object]] = []
    for number, raw in rows:
        cells = list(raw)
        active = [(merge, value) for merge, value in active if merge[1] >= number]
        for merge in starting.get(number, []):
            active.append((merge, cells[merge[2] - 1] if merge[2] - 1 < len(cells) else None))
        for (_, _, first, last), value in active:
            if len(cells) < last:
                cells.extend([None] * (last - len(cells)))
            cells[first - 1 : last] = [value] * (last - first + 1)
        yield number, cells


# ---- .xlsx ---------------------------------------------------------------------------------------------------


def load_xlsx(path: Path, source: str, budget: Budget) -> list[Document]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        merges = _xlsx_merges(path)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError, ElementTree.ParseError) as err:
        raise _corrupt(source, "Excel .xlsx", err) from err
    try:
        docs: list[Document] = []
        for sheet in workbook.worksheets:
            rows = fill_merged(enumerate(sheet.iter_rows(values_only=True), start=1), merges.get(sheet.title, []))
            docs.extend(row_documents(rows, source, budget, sheet=sheet.title, format="text"))
        return docs
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise _corrupt(source, "Excel .xlsx", err) from err
    finally:
        workbook.close()


def _xlsx_merges(path: Path) -> dict[str, list[Merge]]:
    """{sheet name: merged ranges}, read from the package (openpyxl's read-only sheets do not report them)."""
    from openpyxl.utils.cell import range_boundaries

    with zipfile.ZipFile(path) as package:
        names = set(package.namelist())
        workbook = ElementTree.fromstring(package.read("xl/workbook.xml"))
        targets = (
            _relationship_targets(package, "xl/_rels/workbook.xml.rels")
            if "xl/_rels/workbook.xml.rels" in names
            else {}
        )
        found: dict[str, list[Merge]] = {}
        for sheet in workbook.iter(f"{_MAIN}sheet"):
            part = targets.get(sheet.get(f"{_REL}id", ""), "")
            if part not in names:
                continue
            ranges: list[Merge] = []
            with package.open(part) as stream:
                for _, element in ElementTree.iterparse(stream):
                    if element.tag == f"{_MAIN}mergeCell" and len(ranges) < _MAX_MERGES:
                        first_col, first_row, last_col, last_row = range_boundaries(element.get("ref", ""))
                        if first_col and first_row and last_col and last_row:  # whole rows or columns: no
                            ranges.append((first_row, last_row, first_col, last_col))
                    element.clear()  # keeps memory flat over a long sheet
            found[sheet.get("name", "")] = ranges
        return found


def _relationship_targets(package: zipfile.ZipFile, rels: str) -> dict[str, str]:
    root = ElementTree.fromstring(package.read(rels))
    targets = {}
    for rel in root.iter(f"{_PACKAGE_REL}Relationship"):
        target = rel.get("Target", "")
        targets[rel.get("Id", "")] = (
            target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
        )
    return targets


# ---- .xls ----------------------------------------------------------------------------------------------------


def load_xls(path: Path, source: str, budget: Budget) -> list[Document]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
    except (
        xlrd.XLRDError,
        xlrd.compdoc.CompDocError,
        ValueError,
        KeyError,
        IndexError,
        OSError,
        AssertionError,
    ) as err:
        raise _corrupt(source, "Excel 97-2003 .xls", err) from err
    try:
        docs: list[Document] = []
        for index in range(book.nsheets):
            budget.tick()
            sheet = book.sheet_by_index(index)
            merges = [(r0 + 1, r1, c0 + 1, c1) for r0, r1, c0, c1 in sheet.merged_cells]
            rows = fill_merged(_xls_rows(sheet, book.datemode), merges)
            docs.extend(row_documents(rows, source, budget, sheet=sheet.name, format="text"))
            book.unload_sheet(index)
        return docs
    except (xlrd.XLRDError, ValueError, IndexError) as err:
        raise _corrupt(source, "Excel 97-2003 .xls", err) from err
    finally:
        book.release_resources()


def _xls_rows(sheet: Any, datemode: int) -> Iterator[tuple[int, list[object]]]:
    for index in range(sheet.nrows):
        yield index + 1, [_xls_value(cell, datemode) for cell in sheet.row(index)]


def _xls_value(cell: Any, datemode: int) -> object:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
        except (xlrd.xldate.XLDateError, OverflowError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    return cell.value
