"""Search modes, keyword-index upkeep and multi-KB search through the HTTP API (hash embedders, offline)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.chat.citations import markdown_citations
from server.knowledge_base.search import SearchQuery
from server.retrieval.keyword_index import KeywordIndex

LONG = "the zebra " + " ".join(f"word{i}" for i in range(60))
CORPUS = {
    "cv.txt": "计算机视觉研究图像识别",
    "weather.txt": "今天天气晴朗适合出门",
    "food.txt": "四川火锅非常辣",
    "the1.txt": "the the the cat",
    "the2.txt": "the the the dog",
    "zebra.txt": LONG,
    "fox.txt": "a quick brown fox",
}
# query -> the file that answers it
QUERIES = {
    "觉研像识": "cv.txt",  # shares characters, no jieba word: keyword search misses it
    "the zebra": "zebra.txt",  # a rare word drowned in a long text: the hash embedder misses it
    "天气晴朗": "weather.txt",
    "火锅": "food.txt",
    "brown fox": "fox.txt",
}


def create(client: TestClient, name: str, **extra: Any) -> None:
    body = {"knowledge_base_name": name, **extra}
    response = client.post("/knowledge_base/create_knowledge_base", json=body)
    assert response.status_code == 200, response.text


def add_docs(client: TestClient, kb: str, docs: dict[str, str]) -> None:
    custom = {name: [{"page_content": text}] for name, text in docs.items()}
    files = [("files", (name, text.encode(), "text/plain")) for name, text in docs.items()]
    form = {"knowledge_base_name": kb, "docs": json.dumps(custom, ensure_ascii=False), "override": "true"}
    response = client.post("/knowledge_base/upload_docs", data=form, files=files)
    assert response.status_code == 200 and not response.json()["data"]["failed_files"], response.text


def search(client: TestClient, kb: str | list[str], query: str, **extra: Any) -> list[dict[str, Any]]:
    body = {"knowledge_base_name": kb, "query": query, **extra}
    response = client.post("/knowledge_base/search_docs", json=body)
    assert response.status_code == 200, response.text
    return list(response.json())


def sources(results: list[dict[str, Any]]) -> list[str]:
    return [r["metadata"]["source"] for r in results]


@pytest.fixture
def kb(client: TestClient) -> TestClient:
    create(client, "docs")
    add_docs(client, "docs", CORPUS)
    return client


def hits_at_1(client: TestClient, mode: str) -> int:
    return sum(sources(search(client, "docs", q, search_mode=mode, top_k=1)) == [f] for q, f in QUERIES.items())


def test_hybrid_recovers_what_each_mode_misses(kb: TestClient) -> None:
    dense, keyword, hybrid = (hits_at_1(kb, mode) for mode in ("dense", "keyword", "hybrid"))
    assert dense < len(QUERIES) and keyword < len(QUERIES)
    assert hybrid >= max(dense, keyword)
    assert sources(search(kb, "docs", "觉研像识", search_mode="keyword")) == []


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_scores_are_within_unit_interval_and_ordered(kb: TestClient, mode: str) -> None:
    for query in [*QUERIES, "the", "no such words at all"]:
        scores = [r["score"] for r in search(kb, "docs", query, search_mode=mode, top_k=7)]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)


def test_score_threshold_applies_to_the_final_score(kb: TestClient) -> None:
    everything = search(kb, "docs", "火锅", search_mode="hybrid", top_k=7)
    cut = (everything[0]["score"] + everything[-1]["score"]) / 2
    results = search(kb, "docs", "火锅", search_mode="hybrid", top_k=7, score_threshold=cut)
    assert results and len(results) < len(everything) and all(r["score"] >= cut for r in results)


def test_unknown_search_mode_is_refused(kb: TestClient) -> None:
    body = {"knowledge_base_name": "docs", "query": "x", "search_mode": "bm25"}
    assert kb.post("/knowledge_base/search_docs", json=body).status_code == 422


def test_kb_default_mode_then_global_default(client: TestClient) -> None:
    create(client, "kw", search_mode="keyword")
    add_docs(client, "kw", CORPUS)
    assert search(client, "kw", "觉研像识") == []  # keyword mode: no shared jieba word
    info = client.get("/knowledge_base/knowledge_base_info", params={"knowledge_base_name": "kw"}).json()["data"]
    assert info["search_mode"] == "keyword"
    body = {"knowledge_base_name": "kw", "search_mode": "dense"}
    assert client.post("/knowledge_base/update_search_mode", json=body).status_code == 200
    assert sources(search(client, "kw", "觉研像识", top_k=1)) == ["cv.txt"]


def test_keyword_index_follows_deletes_overrides_and_chunk_edits(kb: TestClient) -> None:
    kw = {"search_mode": "keyword"}
    body = {"knowledge_base_name": "docs", "file_names": ["food.txt"], "delete_content": True}
    assert kb.post("/knowledge_base/delete_docs", json=body).status_code == 200
    assert search(kb, "docs", "火锅", **kw) == []
    add_docs(kb, "docs", {"fox.txt": "一只狐狸"})  # override: old chunk ids leave the index
    assert search(kb, "docs", "brown fox", **kw) == [] and sources(search(kb, "docs", "狐狸", **kw)) == ["fox.txt"]
    chunk = search(kb, "docs", "天气晴朗", **kw)[0]
    edit = {chunk["id"]: {"page_content": "熊猫吃竹子", "metadata": {}}}
    response = kb.post("/knowledge_base/update_docs_by_id", json={"knowledge_base_name": "docs", "docs": edit})
    assert response.status_code == 200, response.text
    assert search(kb, "docs", "天气晴朗", **kw) == [] and [r["id"] for r in search(kb, "docs", "熊猫", **kw)] == [
        chunk["id"]
    ]


def _index_file(tmp_path: Any) -> Any:
    [index] = (tmp_path / "data" / "docs").glob("keyword_index.*.db")  # keyword_index.<collection>.db
    return index


def test_missing_index_is_built_from_the_store_on_first_keyword_search(kb: TestClient, tmp_path: Any) -> None:
    index = _index_file(tmp_path)
    index.unlink()
    add_docs(kb, "docs", {"extra.txt": "长城在北京"})  # writes leave a missing index alone
    assert not index.exists()
    assert sources(search(kb, "docs", "长城", search_mode="keyword")) == ["extra.txt"]
    assert index.exists()


def test_an_outdated_index_is_dropped_by_writes_and_rebuilt_by_search(kb: TestClient, tmp_path: Any) -> None:
    import sqlite3

    index = _index_file(tmp_path)
    with sqlite3.connect(index) as conn:
        conn.execute("PRAGMA user_version = 1")  # as written before English stemming
    add_docs(kb, "docs", {"extra.txt": "Rivers flowing north"})
    assert not index.exists()  # not mixed with new tokens
    assert sources(search(kb, "docs", "river flows", search_mode="keyword")) == ["extra.txt"]
    assert KeywordIndex(index).is_current()


def test_rebuild_swaps_in_a_fresh_index(kb: TestClient, tmp_path: Any) -> None:
    before = {r["id"] for r in search(kb, "docs", "火锅", search_mode="keyword")}
    response = kb.post("/knowledge_base/recreate_vector_store", json={"knowledge_base_name": "docs"})
    assert response.status_code == 200, response.text
    after = search(kb, "docs", "火锅", search_mode="keyword")
    assert sources(after) == ["food.txt"] and {r["id"] for r in after}.isdisjoint(before)
    assert not list((tmp_path / "data" / "docs").glob(".keyword_index-building-*"))


def test_several_kbs_across_embedding_models_are_fused_and_named(client: TestClient) -> None:
    create(client, "a")
    create(client, "b", embed_model="hash-alt")
    add_docs(client, "a", {"cv.txt": CORPUS["cv.txt"], "food.txt": CORPUS["food.txt"]})
    add_docs(client, "b", {"fox.txt": CORPUS["fox.txt"], "weather.txt": CORPUS["weather.txt"]})
    for mode in ("dense", "keyword", "hybrid"):
        results = search(client, ["a", "b"], "火锅 brown fox", search_mode=mode, top_k=4)
        named = {(r["metadata"]["kb"], r["metadata"]["source"]) for r in results}
        assert {("a", "food.txt"), ("b", "fox.txt")} <= named, mode
        assert all(0.0 <= r["score"] <= 1.0 for r in results)
    assert "kb" not in search(client, "a", "火锅")[0]["metadata"]


def test_several_kbs_in_kb_chat_name_each_source(client: TestClient) -> None:
    create(client, "a")
    create(client, "b")
    add_docs(client, "a", {"food.txt": CORPUS["food.txt"]})
    add_docs(client, "b", {"fox.txt": CORPUS["fox.txt"]})
    search = client.app.state.services.search  # type: ignore[attr-defined]
    found = search.retriever(["a", "b"], SearchQuery("火锅 fox", top_k=4, score_threshold=0.0, search_mode="hybrid"))()
    assert {(r.metadata["kb"], r.metadata["source"]) for r in found} == {("a", "food.txt"), ("b", "fox.txt")}
    docs = markdown_citations(found, None)
    assert any("knowledge_base_name=a" in doc for doc in docs) and any("knowledge_base_name=b" in doc for doc in docs)
