"""LangChain interop against the real libraries: the splitter as a TextSplitter, a KB as a BaseRetriever."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from conftest import LiveServer, make_settings
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_text_splitters import TextSplitter

from server.errors import InvalidInput
from server.integrations.langchain import ZhikuRetriever, ZhikuSearchError, ZhikuTextSplitter
from server.splitter import ChineseRecursiveTextSplitter

KB = "链式"
TEXT = "第一句讲安装。第二句讲配置文件的位置！第三句讲检索模式？" * 12
GUIDE = "# 手册\n\n## 安装\n运行 make start 即可完成安装。\n\n## 配置\n配置文件在 configs 目录，可以用环境变量覆盖。"


def test_the_splitter_is_a_text_splitter_with_our_chunks() -> None:
    splitter = ZhikuTextSplitter(chunk_size=40, chunk_overlap=8)
    assert isinstance(splitter, TextSplitter)
    assert splitter.split_text(TEXT) == ChineseRecursiveTextSplitter(40, 8).split_text(TEXT)
    created = splitter.create_documents([TEXT], metadatas=[{"source": "a.txt"}])
    assert [doc.page_content for doc in created] == splitter.split_text(TEXT)
    assert all(doc.metadata == {"source": "a.txt"} for doc in created)


def test_split_documents_keeps_heading_paths_and_chunk_indices() -> None:
    chunks = ZhikuTextSplitter(chunk_size=60, chunk_overlap=10).split_documents([Document(GUIDE, metadata={"a": 1})])
    assert {chunk.metadata["headings"] for chunk in chunks} == {"手册 > 安装", "手册 > 配置"}
    assert [chunk.metadata["chunk_index"] for chunk in chunks] == list(range(len(chunks)))
    assert all(chunk.metadata["a"] == 1 for chunk in chunks)
    enhanced = ZhikuTextSplitter(60, 10, zh_title_enhance=True).transform_documents([Document(GUIDE)])
    assert enhanced[0].page_content.startswith("【手册 > 安装】")


def test_bad_chunk_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="chunk_overlap"):
        ZhikuTextSplitter(chunk_size=50, chunk_overlap=50)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("langchain"), api={"api_key": "k3y"})
    with LiveServer(settings) as server:
        headers = {"Authorization": "Bearer k3y"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
            files = [("files", ("guide.md", GUIDE.encode())), ("files", ("notes.txt", "火锅是重庆的名菜。".encode()))]
            uploaded = http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files)
            assert uploaded.status_code == 200, uploaded.text
        yield server


def _retriever(api: LiveServer, **fields: object) -> ZhikuRetriever:
    return ZhikuRetriever(base_url=api.url, knowledge_base_name=KB, api_key="k3y", **fields)  # type: ignore[arg-type]


def test_a_kb_answers_as_a_langchain_retriever(api: LiveServer) -> None:
    retriever = _retriever(api, top_k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("配置文件 环境变量")
    assert 1 <= len(docs) <= 2 and all(isinstance(doc, Document) for doc in docs)
    assert docs[0].metadata["source"] == "guide.md" and 0.0 <= docs[0].metadata["score"] <= 1.0
    assert docs[0].id
    keyword = _retriever(api, search_mode="keyword", filter={"source": "notes.txt"}).invoke("火锅")
    assert [doc.metadata["source"] for doc in keyword] == ["notes.txt"]


def test_the_retriever_runs_in_a_chain_and_async(api: LiveServer) -> None:
    chain = _retriever(api, top_k=1) | RunnableLambda(lambda docs: docs[0].page_content)
    assert "火锅" in chain.invoke("重庆 火锅")
    docs = asyncio.run(_retriever(api, top_k=3).ainvoke("安装"))
    assert docs and any("make start" in doc.page_content for doc in docs)


def test_errors_say_what_the_api_said(api: LiveServer) -> None:
    with pytest.raises(ZhikuSearchError, match="does not exist") as missing:
        ZhikuRetriever(base_url=api.url, knowledge_base_name="nope", api_key="k3y").invoke("x")  # type: ignore[arg-type]
    assert missing.value.status == 404
    with pytest.raises(ZhikuSearchError) as denied:
        ZhikuRetriever(base_url=api.url, knowledge_base_name=KB).invoke("x")
    assert denied.value.status == 401
    with pytest.raises(ZhikuSearchError, match="cannot reach"):
        ZhikuRetriever(base_url="http://127.0.0.1:9", knowledge_base_name=KB).invoke("x")
