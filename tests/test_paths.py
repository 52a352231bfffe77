import pytest

from server.errors import InvalidName
from server.knowledge_base.paths import validate_file_path, validate_kb_name


@pytest.mark.parametrize("name", ["samples", "产品手册", "知识库 2024", "data-set_1", "Ünïcödé", "a" * 64])
def test_good_kb_names(name: str) -> None:
    assert validate_kb_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "   ", "a/b", "a\\b", "..", "x..y", ".hidden", "a\x00b", "tab\tname", "a" * 65, " lead", "c:d"]
)
def test_bad_kb_names(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_kb_name(name)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a.txt", "a.txt"), ("docs/手册.pdf", "docs/手册.pdf"), ("docs\\a.md", "docs/a.md"), ("./x/./y.txt", "x/y.txt")],
)
def test_good_file_paths(raw: str, clean: str) -> None:
    assert validate_file_path(raw) == clean


@pytest.mark.parametrize("raw", ["", "../a.txt", "a/../../b.txt", "/etc/passwd", "C:\\x.txt", "a\x01.txt", "..", "/"])
def test_bad_file_paths(raw: str) -> None:
    with pytest.raises(InvalidName):
        validate_file_path(raw)
