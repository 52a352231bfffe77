"""The keyword index (SQLite FTS5 + jieba) and rank fusion, without the API."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from server.retrieval.fusion import rrf
from server.retrieval.keyword_index import KeywordIndex, bm25_to_score, coverage, fts_query, tokenize

DOCS = {
    "zh1": "知识库问答系统支持中文分词和向量检索。",
    "zh2": "今天天气很好，我们去公园散步。",
    "en1": "The quick brown fox jumps over the lazy dog.",
    "en2": "FAISS stores dense vectors for similarity search.",
    "mix": "使用 FAISS 做向量检索，再用 BM25 做关键词检索。",
}


@pytest.fixture
def index(tmp_path: Path) -> KeywordIndex:
    built = KeywordIndex(tmp_path / "kb" / "keyword_index.db")
    built.create()
    built.add(list(DOCS), list(DOCS.values()))
    return built


def ids(index: KeywordIndex, query: str, limit: int = 10) -> list[str]:
    return [hit.id for hit in index.search(query, limit)]


def test_tokenize_segments_chinese_and_lowercases_latin() -> None:
    tokens = tokenize("使用FAISS做向量检索 Hello-World 2024")
    assert {"faiss", "hello", "world", "2024", "向量", "检索"} <= set(tokens)
    assert "FAISS" not in tokens


def test_english_words_are_stemmed_and_stop_words_dropped() -> None:
    assert tokenize("The proteins were inhibited by the drugs") == ["protein", "inhibit", "drug"]
    assert tokenize("IL-6 p53 COVID19") == ["il", "6", "p53", "covid19"]  # words with digits stay whole


def test_an_inflected_query_finds_the_other_form(index: KeywordIndex) -> None:
    index.add(["cells"], ["Macrophages inhibit tumour growth."])
    assert ids(index, "inhibiting tumours")[0] == "cells"


def test_an_index_from_an_older_tokenizer_is_not_current(index: KeywordIndex) -> None:
    import sqlite3

    assert index.is_current()
    with sqlite3.connect(index.path) as conn:
        conn.execute("PRAGMA user_version = 1")
    assert not index.is_current()


def test_chinese_english_and_mixed_queries(index: KeywordIndex) -> None:
    assert ids(index, "中文分词")[0] == "zh1"
    assert ids(index, "天气 公园")[0] == "zh2"
    assert ids(index, "lazy DOG")[0] == "en1"
    assert ids(index, "faiss 关键词")[0] == "mix"
    assert set(ids(index, "FAISS")) == {"en2", "mix"}
    assert ids(index, "nothing-matches-this 鲸鱼") == []


@pytest.mark.parametrize(
    "query",
    ['"', "fox OR", "NOT fox", "fox AND (", "body:fox", "fox*", "NEAR(fox dog)", "'; DROP TABLE chunk_ids; --", "^fox"],
)
def test_fts_syntax_in_queries_is_plain_text(index: KeywordIndex, query: str) -> None:
    hits = index.search(query, 5)  # must not raise an FTS5 syntax error
    assert all(hit.id in DOCS for hit in hits)
    assert index.count() == len(DOCS)


def test_fts_query_quotes_every_token() -> None:
    assert fts_query(tokenize('say "hi" now')) == '"say" OR "hi" OR "now"'
    assert fts_query(tokenize("  ,,, ")) == ""
    assert fts_query(['a"b']) == '"a""b"'


def test_add_delete_update_are_incremental(index: KeywordIndex) -> None:
    index.add(["new"], ["大熊猫生活在四川的竹林里。"])
    assert ids(index, "大熊猫") == ["new"]
    assert index.count() == len(DOCS) + 1
    index.add(["new"], ["An edited chunk about pandas."])  # same id: replaced, not duplicated
    assert ids(index, "大熊猫") == [] and ids(index, "pandas") == ["new"]
    index.delete(["new", "en1", "unknown"])
    assert ids(index, "pandas") == [] and ids(index, "fox") == []
    assert index.count() == len(DOCS) - 1
    assert ids(index, "天气")[0] == "zh2"  # untouched chunks stay indexed


def test_index_persists_across_instances(index: KeywordIndex) -> None:
    assert ids(KeywordIndex(index.path), "fox") == ["en1"]


def test_missing_index_finds_nothing_and_is_not_created(tmp_path: Path) -> None:
    missing = KeywordIndex(tmp_path / "none.db")
    assert missing.search("fox", 3) == [] and not missing.exists()


def test_bm25_score_map_is_monotone_within_unit_interval() -> None:
    values = [bm25_to_score(b) for b in (-1.0, 0.0, 0.5, 5.0, 50.0, 1e9)]
    assert values == sorted(values)
    assert values[0] == 0.0 and values[3] == 0.5 and all(0.0 <= v < 1.0 or v == 1.0 for v in values)


def test_rrf_rewards_agreement_and_scales_to_one() -> None:
    fused = dict(rrf([["a", "b", "c"], ["a", "c", "d"]]))
    assert fused["a"] == pytest.approx(1.0)
    assert fused["c"] > fused["b"] > 0 and fused["c"] > fused["d"]
    assert all(0.0 <= score <= 1.0 for score in fused.values())
    assert rrf([]) == []


def test_coverage_is_the_share_of_query_tokens_a_text_holds() -> None:
    assert coverage("向量检索", "FAISS 做向量检索") == 1.0
    assert coverage("向量检索的默认值", "The quick brown fox") == 0.0
    assert 0.0 < coverage("brown fox vectors", "The quick brown fox") < 1.0
    assert coverage("", "anything") == 0.0


def test_frequent_query_words_are_left_out_when_rarer_ones_match(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "big.db")
    texts = [f"common filler {i}" for i in range(600)] + ["common zebra", "zebra crossing"]
    index.add([f"c{i}" for i in range(len(texts))], texts)
    assert {hit.id for hit in index.search("common zebra", 10)} == {"c600", "c601"}  # not 600 "common" rows
    assert len(index.search("common filler", 700)) == 601  # nothing rarer matches: every word counts
    assert index.search("unknownword", 5) == []


def _term_table(index: KeywordIndex) -> dict[str, int]:
    with closing(sqlite3.connect(index.path)) as conn:
        return dict(conn.execute("SELECT term, chunks FROM terms").fetchall())


def _vocab(index: KeywordIndex) -> dict[str, int]:
    with closing(sqlite3.connect(index.path)) as conn:
        return dict(conn.execute("SELECT term, doc FROM chunk_vocab").fetchall())


def test_token_counts_follow_adds_replacements_and_deletes(index: KeywordIndex) -> None:
    index.add(["en2"], ["Vectors, vectors and more vectors."])  # replaces a chunk: old tokens uncounted
    index.add(["new"], ["FAISS vectors"])
    index.delete(["en1", "unknown"])
    assert _term_table(index) == _vocab(index)
    assert _term_table(index)["vector"] == 2 and "fox" not in _term_table(index)


def test_a_file_without_token_counts_gets_them_on_first_use(index: KeywordIndex) -> None:
    expected = _term_table(index)
    with closing(sqlite3.connect(index.path)) as conn, conn:
        conn.execute("DROP TABLE terms")
    assert ids(index, "fox") == ["en1"]
    assert _term_table(index) == expected


def test_an_interrupted_first_count_leaves_no_empty_table(index: KeywordIndex) -> None:
    expected = _term_table(index)
    with closing(sqlite3.connect(index.path)) as conn, conn:
        conn.execute("DROP TABLE terms")
    with pytest.raises(RuntimeError), index._connect():
        raise RuntimeError("killed during the count")
    with closing(sqlite3.connect(index.path)) as conn:  # rolled back with the count: recounted by the next use
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'terms'").fetchone() is None
    assert ids(index, "fox") == ["en1"] and _term_table(index) == expected
