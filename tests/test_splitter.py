from __future__ import annotations

import itertools
import random
import string
import time
from pathlib import Path

import pytest

from server.documents import Document
from server.errors import InvalidInput
from server.splitter import (
    SPLITTER_NAME,
    ChineseRecursiveTextSplitter,
    chunk_length,
    is_possible_title,
    split_documents,
)

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "kb-samples" / "test_files" / "test.txt"
SENTENCE_ENDS = ("。", "！", "？", "”")


def _shared_prefix_suffix(previous: str, following: str) -> int:
    """Length of the longest end of ``previous`` that ``following`` starts with."""
    for length in range(min(len(previous), len(following)), 0, -1):
        if previous.endswith(following[:length]):
            return length
    return 0


def _letters(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(count))


def _random_text(rng: random.Random) -> str:
    """Chinese-like text mixing punctuation, spaces, line breaks and long runs without any separator."""
    parts: list[str] = []
    for _ in range(rng.randint(0, 40)):
        kind = rng.random()
        if kind < 0.15:
            parts.append("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(50, 700))))
        elif kind < 0.25:
            parts.append(rng.choice(["\n", "\n\n", "\n\n\n\n", " ", "   ", "\t", "\r\n"]))
        elif kind < 0.35:  # English words, which count a half per character, and long runs of letters
            lengths = [rng.choice([rng.randint(1, 12), rng.randint(50, 400)]) for _ in range(9)]
            parts.append(" ".join(_letters(rng, length) for length in lengths) + rng.choice([". ", ", ", ""]))
        else:
            word = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(1, 40)))
            parts.append(word + rng.choice(["。", "！", "？", "……", "。”", "，", "；", ". ", "、", " ", ""]))
    return "".join(parts)


def test_splitter_name_matches_class() -> None:
    assert ChineseRecursiveTextSplitter.__name__ == SPLITTER_NAME


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("知识库", 3),
        ("word", 2),
        ("知识 base", 4.5),
        ("，。！「」", 5),
        ("ｆｕｌｌ", 4),
        ("한국어", 3),
        ("𠀀", 1),
    ],
)
def test_chunk_length_counts_ascii_a_half_and_other_characters_whole(text: str, length: float) -> None:
    assert chunk_length(text) == length


def test_english_chunks_hold_twice_the_characters() -> None:
    english = " ".join(f"Sentence {i} is about retrieval." for i in range(200))
    chinese = "".join(f"第{'一二三四五六七八九'[i % 9]}句讲检索。" for i in range(200))
    splitter = ChineseRecursiveTextSplitter(chunk_size=100, chunk_overlap=0)
    assert 170 < max(map(len, splitter.split_text(english))) <= 200
    assert 90 < max(map(len, splitter.split_text(chinese))) <= 100


def test_runs_without_separators_are_cut_by_units() -> None:
    rng = random.Random(3)
    text = "".join(_letters(rng, 30) + "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(10)) for _ in range(20))
    chunks = ChineseRecursiveTextSplitter(chunk_size=25, chunk_overlap=5).split_text(text)
    assert all(19 < chunk_length(chunk) <= 25 for chunk in chunks[:-1])
    for previous, following in itertools.pairwise(chunks):
        assert 0 < chunk_length(following[: _shared_prefix_suffix(previous, following)]) <= 5


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-5, 0), (10, -1), (10, 10), (10, 20)])
def test_invalid_sizes_raise(size: int, overlap: int) -> None:
    with pytest.raises(InvalidInput) as error:
        ChineseRecursiveTextSplitter(chunk_size=size, chunk_overlap=overlap)
    assert str(size) in error.value.message
    assert str(overlap) in error.value.message


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    splitter = ChineseRecursiveTextSplitter(chunk_size=50, chunk_overlap=10)
    assert splitter.split_text("  你好，世界。  ") == ["你好，世界。"]
    assert splitter.split_text(" \n\n\t \n ") == []


def test_three_or_more_newlines_collapse_to_two() -> None:
    splitter = ChineseRecursiveTextSplitter(chunk_size=100, chunk_overlap=0)
    assert splitter.split_text("第一段。\n\n\n\n第二段。\r\n\r\n \r\n第三段。") == ["第一段。\n\n第二段。\n\n第三段。"]


def test_chinese_chunks_end_at_sentence_ends() -> None:
    sentences = [f"这是第{i}句话，内容{'长' * (i % 7)}一些" + "。！？"[i % 3] for i in range(40)]
    chunks = ChineseRecursiveTextSplitter(chunk_size=60, chunk_overlap=0).split_text("".join(sentences))
    assert len(chunks) > 5
    assert all(chunk.endswith(SENTENCE_ENDS) for chunk in chunks)
    assert not any(chunk.startswith(("。", "！", "？", "，")) for chunk in chunks)


def test_closing_quotes_stay_with_their_sentence() -> None:
    text = "他说：“今天下雨。”我们没有出门。她问：“明天呢？”没人回答……于是散了。" * 5
    chunks = ChineseRecursiveTextSplitter(chunk_size=30, chunk_overlap=0).split_text(text)
    assert not any(chunk.startswith(("”", "…")) for chunk in chunks)
    assert all(chunk.endswith(("。", "”", "…")) for chunk in chunks)


def test_long_sentence_falls_back_to_commas_then_characters() -> None:
    clauses = "，".join("子句" + "文" * 8 for _ in range(10)) + "。"
    chunks = ChineseRecursiveTextSplitter(chunk_size=25, chunk_overlap=0).split_text(clauses)
    assert all(chunk.endswith(("，", "。")) for chunk in chunks)
    run = ChineseRecursiveTextSplitter(chunk_size=25, chunk_overlap=0).split_text("字" * 100)
    assert run == ["字" * 25] * 4


def test_english_sentences() -> None:
    text = " ".join(f"Sentence number {i} says something{'!' if i % 2 else '.'}" for i in range(30))
    chunks = ChineseRecursiveTextSplitter(chunk_size=40, chunk_overlap=0).split_text(text)
    assert len(chunks) > 3
    assert all(60 < len(chunk) <= 80 and chunk.endswith((".", "!")) for chunk in chunks[:-1])
    assert all(chunk[0].isupper() for chunk in chunks)


def test_numbered_list_items_stay_whole() -> None:
    text = "步骤如下：\n1. 确定您要讨论的主题。\n2. 制定一个明确的提示。\n3. 开始对话。"
    chunks = ChineseRecursiveTextSplitter(chunk_size=20, chunk_overlap=0).split_text(text)
    assert not any(chunk.endswith(("1.", "2.", "3.")) for chunk in chunks)


def test_random_texts_never_exceed_chunk_size_and_lose_nothing() -> None:
    for seed in range(150):
        rng = random.Random(seed)
        size = rng.randint(1, 300)
        overlap = rng.randint(0, size - 1)
        text = _random_text(rng)
        chunks = ChineseRecursiveTextSplitter(chunk_size=size, chunk_overlap=overlap).split_text(text)
        assert all(0 < chunk_length(chunk) <= size for chunk in chunks), (seed, size)
        assert all(chunk == chunk.strip() for chunk in chunks), seed
        # Every chunk is a piece of the text, later than the one before, and together they cover all of it.
        # Compared without whitespace: line breaks are collapsed and a long blank run may be shortened.
        solid = "".join(text.split())
        previous_start, covered = -1, 0
        for chunk in chunks:
            piece = "".join(chunk.split())
            # The latest place that leaves no gap: short English pieces ("a") also occur inside earlier ones.
            start = solid.rfind(piece, previous_start + 1, covered + len(piece))
            assert start > previous_start, (seed, chunk)
            previous_start, covered = start, max(covered, start + len(piece))
        assert covered == len(solid), seed


def test_overlap_is_whole_sentences_and_within_limit() -> None:
    text = "".join(f"第{i}句有{'字' * (i % 9)}。" for i in range(60))
    chunks = ChineseRecursiveTextSplitter(chunk_size=60, chunk_overlap=20).split_text(text)
    assert len(chunks) > 5
    for previous, following in itertools.pairwise(chunks):
        shared = _shared_prefix_suffix(previous, following)
        assert 0 < chunk_length(following[:shared]) <= 20
        assert following.startswith("第")  # the overlap starts at a sentence boundary
        assert previous[-shared - 1] == "。"


def test_overlap_falls_back_to_a_character_suffix() -> None:
    text = "".join(chr(0x4E00 + i) for i in range(300))  # no separator anywhere
    chunks = ChineseRecursiveTextSplitter(chunk_size=50, chunk_overlap=10).split_text(text)
    for previous, following in itertools.pairwise(chunks):
        assert len(previous) <= 50
        assert following[:10] == previous[-10:]
    assert "".join([chunks[0]] + [chunk[10:] for chunk in chunks[1:]]) == text


def test_zero_overlap_repeats_nothing() -> None:
    text = "".join(f"句子{i}。" for i in range(100))
    chunks = ChineseRecursiveTextSplitter(chunk_size=30, chunk_overlap=0).split_text(text)
    assert "".join(chunks) == text


def test_large_text_is_fast() -> None:
    rng = random.Random(7)
    text = "".join(_random_text(rng) for _ in range(40))
    text = (text * (2_000_000 // max(len(text), 1) + 1))[:2_000_000]
    started = time.perf_counter()
    chunks = ChineseRecursiveTextSplitter(chunk_size=250, chunk_overlap=50).split_text(text)
    assert time.perf_counter() - started < 5  # about 0.5 s on a laptop; generous for slow CI
    assert max(chunk_length(chunk) for chunk in chunks) <= 250


MARKDOWN = """前言部分。

# 安装

## Linux

在 Linux 上运行安装脚本。

```bash
# 这不是标题
pip install zhiku
```

## Windows

双击安装程序。

# 使用

### 提问

输入问题。

## 配置 ##

修改配置文件。
"""


def test_markdown_headings_give_heading_paths() -> None:
    chunks = split_documents([Document(MARKDOWN, {"source": "a.md"})], chunk_size=200, chunk_overlap=20)
    by_path = {chunk.metadata.get("headings", ""): chunk.page_content for chunk in chunks}
    assert list(by_path) == ["", "安装 > Linux", "安装 > Windows", "使用 > 提问", "使用 > 配置"]
    assert "headings" not in chunks[0].metadata
    assert by_path["安装 > Linux"].startswith("## Linux\n")
    assert "# 这不是标题" in by_path["安装 > Linux"]  # code-fence comments stay in their section
    assert by_path["使用 > 配置"].startswith("## 配置 ##")


def test_heading_only_document_is_kept() -> None:
    chunks = split_documents([Document("# 只有标题")], chunk_size=50, chunk_overlap=0)
    assert [(c.page_content, c.metadata["headings"]) for c in chunks] == [("# 只有标题", "只有标题")]


def test_long_sections_split_separately_within_size() -> None:
    body = "".join(f"第{i}句说明内容。" for i in range(80))
    text = f"# 甲\n\n{body}\n\n# 乙\n\n{body}"
    chunks = split_documents([Document(text, {"source": "b.md"})], chunk_size=100, chunk_overlap=30)
    assert all(chunk_length(chunk.page_content) <= 100 for chunk in chunks)
    second = [chunk for chunk in chunks if chunk.metadata["headings"] == "乙"]
    assert second[0].page_content.startswith("# 乙")
    assert all("# 甲" not in chunk.page_content for chunk in second)


def test_metadata_copied_and_chunk_index_counts_per_source() -> None:
    pages = [Document("甲。" * 80, {"source": "x.pdf", "page": page}) for page in range(3)]
    other = Document("乙。" * 80, {"source": "y.txt"})
    chunks = split_documents([*pages, other], chunk_size=50, chunk_overlap=10)
    from_x = [chunk for chunk in chunks if chunk.metadata["source"] == "x.pdf"]
    assert [chunk.metadata["chunk_index"] for chunk in from_x] == list(range(len(from_x)))
    assert {chunk.metadata["page"] for chunk in from_x} == {0, 1, 2}
    from_y = [chunk for chunk in chunks if chunk.metadata["source"] == "y.txt"]
    assert from_y[0].metadata["chunk_index"] == 0
    assert pages[0].metadata == {"source": "x.pdf", "page": 0}  # the input is not modified


def test_title_enhance_prefixes_heading_path() -> None:
    docs = [Document(MARKDOWN, {"source": "a.md"})]
    chunks = split_documents(docs, chunk_size=200, chunk_overlap=20, zh_title_enhance=True)
    linux = next(chunk for chunk in chunks if chunk.metadata.get("headings") == "安装 > Linux")
    assert linux.page_content.startswith("【安装 > Linux】\n## Linux")
    assert linux.metadata["title"] == "安装 > Linux"
    assert chunks[0].page_content == "前言部分。"  # no heading and no title-like first line
    assert "title" not in chunks[0].metadata


def test_title_enhance_uses_a_title_like_first_line() -> None:
    text = "产品使用说明\n\n" + "".join(f"第{i}条注意事项需要遵守。" for i in range(30))
    chunks = split_documents([Document(text)], chunk_size=60, chunk_overlap=0, zh_title_enhance=True)
    assert chunks[0].page_content.startswith("产品使用说明\n")  # not repeated in front of itself
    assert all(chunk.page_content.startswith("【产品使用说明】\n") for chunk in chunks[1:])
    assert all(chunk.metadata["title"] == "产品使用说明" for chunk in chunks)
    plain = split_documents([Document(text)], chunk_size=60, chunk_overlap=0)
    assert all("title" not in chunk.metadata for chunk in plain)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("第三章 安装与配置", True),
        ("Installation Guide", True),
        ("这是一个完整的句子。", False),
        ("列举如下：", False),
        ("2023 12 01", False),
        ("", False),
        ("标" * 31, False),
        ("第一行\n第二行", False),
    ],
)
def test_is_possible_title(line: str, expected: bool) -> None:
    assert is_possible_title(line) is expected


def test_sample_file_chunks_fit() -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"sample not available: {SAMPLE}")
    text = SAMPLE.read_text(encoding="utf-8")
    chunks = ChineseRecursiveTextSplitter(chunk_size=250, chunk_overlap=50).split_text(text)
    assert len(chunks) > 10
    assert all(0 < chunk_length(chunk) <= 250 for chunk in chunks)
    documents = split_documents([Document(text, {"source": "test.txt"})], chunk_size=250, chunk_overlap=50)
    assert all(chunk_length(doc.page_content) <= 250 for doc in documents)
    assert any(doc.metadata.get("headings") for doc in documents)
