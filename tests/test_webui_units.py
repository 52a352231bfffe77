"""Web UI pieces without Streamlit: the API client (over a mock transport), chunk diffs, batching, i18n."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.webui_fake_api import fake_job, fake_server_configs, job_file
from webui_pages.api_client import ApiClient, ApiError, UploadFile
from webui_pages.api_types import Chunk, Job, UiDefaults
from webui_pages.chat_view import ChatMessage, conversation_markdown
from webui_pages.dialogue_page import ChatOptions, chat_payload, history_payload
from webui_pages.i18n import TEXTS, Translator
from webui_pages.kb_chunks import chunk_changes
from webui_pages.kb_jobs import counts_text, format_duration, progress_text
from webui_pages.kb_upload import UploadParams, batch_bytes, batches, report_message, send_batches

ROOT = Path(__file__).resolve().parents[1]


def client_for(handler: httpx.MockTransport) -> ApiClient:
    return ApiClient("http://api.test", "secret", transport=handler)


def test_envelope_data_and_auth_header() -> None:
    seen = {}

    def handle(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json={"code": 200, "msg": "ok", "data": ["样例库"]})

    assert client_for(httpx.MockTransport(handle)).list_file_names("样例库") == ["样例库"]
    assert seen["auth"] == "Bearer secret"


def test_error_status_becomes_api_error_with_the_envelope_message() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(409, json={"code": 409, "msg": "已存在", "data": None}))
    with pytest.raises(ApiError) as caught:
        client_for(transport).create_kb("样例库", info="", vs_type="faiss", embed_model="hash")
    assert (caught.value.message, caught.value.status) == ("已存在", 409)


def test_unreachable_api_is_an_api_error_without_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(ApiError) as caught:
        client_for(httpx.MockTransport(refuse)).list_kbs()
    assert caught.value.status is None and "http://api.test" in caught.value.message


def test_search_docs_reads_the_bare_list() -> None:
    body = [{"id": "1", "page_content": "文本", "metadata": {"source": "a.md", "page": 3}, "score": 0.7}]
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    [hit] = client_for(transport).search_docs("kb", "问", top_k=3, score_threshold=0.0)
    assert (hit.source, hit.page, hit.score) == ("a.md", 3, 0.7)


def test_rebuild_progress_is_read_from_server_sent_events() -> None:
    events = [{"code": 200, "msg": "(1 / 2): a.md", "total": 2, "finished": 1, "doc": "a.md"}]
    events.append({"code": 200, "msg": "rebuilt", "failed_files": {"b.md": "empty"}})
    stream = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in events)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=stream))
    got = list(client_for(transport).recreate_vector_store("kb", chunk_size=250, chunk_overlap=50))
    assert [(e.finished, e.total, e.doc) for e in got] == [(1, 2, "a.md"), (None, None, "")]
    assert got[1].failed_files == {"b.md": "empty"}


def test_chat_stream_error_before_streaming_is_raised() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={"code": 404, "msg": "no such KB"}))
    with pytest.raises(ApiError, match="no such KB"):
        list(client_for(transport).chat("knowledge_base_chat", {"query": "q"}))


def test_list_models_merges_running_and_configured() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("list_running_models"):
            return httpx.Response(200, json={"code": 200, "msg": "", "data": {"b": {}}})
        return httpx.Response(200, json={"code": 200, "msg": "", "data": {"local": {"a": {}, "b": {}}, "online": {}}})

    assert client_for(httpx.MockTransport(handle)).list_models() == ["b", "a"]


def test_chunk_changes_leave_untouched_chunks_out() -> None:
    original = [Chunk("1", "一", {"source": "f.md", "page": 1}), Chunk("2", "二", {}), Chunk("3", "三", {})]
    changes = chunk_changes(original, {"1": "一改", "2": "二", "3": "三"}, {"3"}, ["新的", "  "], "f.md")
    assert changes.pop("1") == {"page_content": "一改", "metadata": {"source": "f.md", "page": 1}}
    assert changes.pop("3") is None
    [(new_id, new)] = changes.items()
    assert new == {"page_content": "新的", "metadata": {"source": "f.md"}} and new_id not in ("1", "2", "3")


def test_batches_respect_count_and_size() -> None:
    files = [(f"{i}.md", b"x" * 10) for i in range(5)] + [("big.pdf", b"x" * 100)]
    groups = batches(files, max_files=2, max_bytes=50)
    assert [[name for name, _ in group] for group in groups] == [
        ["0.md", "1.md"],
        ["2.md", "3.md"],
        ["4.md"],
        ["big.pdf"],
    ]


def test_the_forms_take_every_choice_from_server_configs() -> None:
    configs = fake_server_configs().model_copy(
        update={"vector_store_types": ["faiss", "milvus"], "chunk_size": 300, "default_llm": None}
    )
    defaults = UiDefaults.from_configs(configs)
    assert defaults.vs_types == ("faiss", "milvus") and defaults.embed_models == ("hash",)
    assert (defaults.chunk_size, defaults.default_llm) == (300, "")
    assert defaults.search_modes == ("dense", "keyword", "hybrid")
    assert "markdown" in defaults.file_types and "docx" in defaults.file_types  # the loaders' own list
    assert {"png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "xls"} <= set(defaults.file_types)  # OCR, .xls
    assert "default" in defaults.prompt_templates["knowledge_base_chat"]


def test_chat_payloads_per_mode() -> None:
    history = history_payload([ChatMessage("user", "1"), ChatMessage("assistant", "2"), ChatMessage("user", "3")], 1)
    assert history == [{"role": "assistant", "content": "2"}, {"role": "user", "content": "3"}]
    kb = ChatOptions("knowledge_base_chat", "m", 0.5, 1, "default", kbs=("库",), top_k=4, score_threshold=0.3)
    payload = chat_payload(kb, "问", history, "conv")
    assert payload["knowledge_base_name"] == "库" and payload["top_k"] == 4 and "conversation_id" not in payload
    two = ChatOptions("knowledge_base_chat", "m", 0.5, 1, "default", kbs=("甲", "乙"), search_mode="keyword")
    assert chat_payload(two, "问", history, "conv")["knowledge_base_name"] == ["甲", "乙"]
    assert chat_payload(two, "问", history, "conv")["search_mode"] == "keyword"
    llm = chat_payload(ChatOptions("llm_chat", "m", 0.5, 1, "default"), "问", [], "conv")
    assert llm["conversation_id"] == "conv" and "top_k" not in llm


def test_conversation_markdown_has_questions_answers_and_sources() -> None:
    messages = [ChatMessage("user", "问题"), ChatMessage("assistant", "回答", docs=["**[1]** a.md"])]
    text = conversation_markdown(Translator("zh"), messages)
    assert "## 用户\n\n问题" in text and "## 助手\n\n回答" in text and "### 出处（1 条）\n\n**[1]** a.md" in text


def test_every_text_key_used_by_the_pages_exists() -> None:
    sources = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "webui_pages").glob("*.py"))
    used = set(re.findall(r"\bt\(\s*\"([a-z0-9_]+)\"", sources))
    assert used and used <= set(TEXTS), sorted(used - set(TEXTS))
    for prefix, names in {
        "section_": ("files", "upload", "jobs", "chunks", "search", "rebuild"),
        "mode_": ("llm_chat",),
        "job_kind_": ("upload", "update", "sync"),
        "job_state_": ("queued", "running", "done", "failed", "cancelled"),
        "file_state_": ("queued", "parsing", "embedding", "writing", "done", "failed", "cancelled", "duplicate"),
    }.items():
        assert all(prefix + name in TEXTS for name in names)


def test_translator_formats_and_refuses_unknown_languages() -> None:
    assert Translator("en")("files_total", total=3, page=1, pages=1) == "3 files · page 1 of 1"
    with pytest.raises(ValueError, match="unknown UI language"):
        Translator("fr")


JOB = {
    "job_id": "j1",
    "knowledge_base_name": "库",
    "kind": "upload",
    "state": "running",
    "created_at": "2026-01-01T08:00:00+00:00",
    "started_at": "2026-01-01T08:00:01+00:00",
    "finished_at": None,
    "total_files": 2,
    "counts": {"queued": 1, "done": 0, "failed": 1},
    "progress": 0.5,
    "chunks": 0,
    "bytes_total": 10,
    "bytes_done": 0,
    "files_per_s": 0.0,
    "chunks_per_s": 0.0,
    "eta_s": None,
    "files": None,
}


def test_a_background_upload_sends_background_true_and_reads_the_202_job() -> None:
    seen: dict[str, bytes] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        seen["body"] = request.read()
        return httpx.Response(202, json={"code": 202, "msg": "queued 2 files as job j1", "data": JOB})

    api = client_for(httpx.MockTransport(handle))
    job = api.upload_docs_in_background(
        "库", [("a.md", b"a")], chunk_size=250, chunk_overlap=50, zh_title_enhance=False
    )
    assert b'name="background"\r\n\r\ntrue' in seen["body"] and b'filename="a.md"' in seen["body"]
    assert b'name="ocr"' not in seen["body"]  # left out: the KB's own OCR mode
    api.upload_docs_in_background(
        "库", [("scan.png", b"x")], chunk_size=250, chunk_overlap=50, zh_title_enhance=False, ocr="never"
    )
    assert b'name="ocr"\r\n\r\nnever' in seen["body"]
    assert (job.job_id, job.active, job.ended_files, job.failed_files, job.eta_s, job.files) == (
        "j1",
        True,
        1,
        1,
        None,
        None,
    )


def test_job_routes_send_their_filters_and_parse_the_files() -> None:
    seen: list[httpx.URL] = []
    detail = {**JOB, "files": [{"file_name": "e.txt", "state": "failed", "error": "empty", "size": 3, "attempts": 2}]}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        data = [JOB] if request.url.path == "/knowledge_base/jobs" else detail
        return httpx.Response(200, json={"code": 200, "msg": "", "data": data})

    api = client_for(httpx.MockTransport(handle))
    assert [job.job_id for job in api.list_jobs("库", state="running", limit=5)] == ["j1"]
    assert dict(seen[0].params) == {"knowledge_base_name": "库", "state": "running", "limit": "5"}
    [row] = api.get_job("a/b", file_state="failed", offset=50, limit=50).files or ()
    assert seen[1].raw_path.startswith(b"/knowledge_base/jobs/a%2Fb?")  # an id stays one path segment
    assert dict(seen[1].params) == {"file_state": "failed", "files_offset": "50", "files_limit": "50"}
    assert (row.file_name, row.state, row.error, row.attempts, row.chunk_count) == ("e.txt", "failed", "empty", 2, 0)
    api.retry_job("j1")
    api.cancel_job("j1")
    assert [url.path for url in seen[2:]] == ["/knowledge_base/jobs/j1/retry", "/knowledge_base/jobs/j1/cancel"]


def test_a_cancel_of_an_ended_job_is_an_api_error_409() -> None:
    body = {"code": 409, "msg": "job j1 has already ended (done)", "data": None}
    transport = httpx.MockTransport(lambda r: httpx.Response(409, json=body))
    with pytest.raises(ApiError) as caught:
        client_for(transport).cancel_job("j1")
    assert (caught.value.status, caught.value.message) == (409, "job j1 has already ended (done)")


class RecordingApi(ApiClient):
    """Refuses any request holding a file named bad*, as the API does with a bad name or a file too big."""

    def __init__(self, down_after: int | None = None) -> None:
        super().__init__("http://api.test")
        self.sent: list[list[str]] = []
        self.down_after = down_after

    def upload_docs_in_background(self, kb: str, files: Sequence[UploadFile], **params: Any) -> Job:
        names = [name for name, _ in files]
        self.sent.append(names)
        if self.down_after is not None and len(self.sent) > self.down_after:
            raise ApiError("cannot reach the API at http://api.test")
        if any(name.startswith("bad") for name in names):
            raise ApiError("bad file name", 422)
        return fake_job(f"j{len(self.sent)}", kb, [job_file(name, "queued") for name in names])


def test_a_refused_batch_is_halved_until_the_bad_file_alone_is_left_out() -> None:
    api = RecordingApi()
    names = ["a", "b", "bad", "c"]
    report = send_batches(api, "库", [[(n, b"x") for n in names]], UploadParams(250, 50, False, False))
    assert report.refused == {"bad": "bad file name"} and report.queued == 3
    assert api.sent == [names, ["a", "b"], ["bad", "c"], ["bad"], ["c"]] and report.job_ids == ["j2", "j5"]


def test_once_the_api_is_down_the_remaining_batches_are_reported_not_sent() -> None:
    api = RecordingApi(down_after=1)
    groups = [[("a", b"x")], [("b", b"x")], [("c", b"x")]]
    sent: list[int] = []
    report = send_batches(api, "库", groups, UploadParams(250, 50, False, False), on_sent=sent.append)
    assert sent == [1] and len(api.sent) == 2 and sorted(report.refused) == ["b", "c"]
    kind, text = report_message(Translator("en"), report)
    assert kind == "warning" and "Queued 1 files as 1 background jobs" in text and "b: cannot reach" in text


def test_batch_bytes_stay_under_the_api_body_limit() -> None:
    assert batch_bytes(200 * 1024 * 1024) == 32 * 1024 * 1024
    assert batch_bytes(10 * 1024 * 1024) == 9 * 1024 * 1024
    assert (
        fake_server_configs().max_upload_mb * 1024 * 1024
        == UiDefaults.from_configs(fake_server_configs()).max_upload_bytes
    )


def test_progress_labels_in_both_languages() -> None:
    en, zh = Translator("en"), Translator("zh")
    assert [format_duration(en, s) for s in (0.2, 59, 61, 3600 + 20 * 60)] == ["1 s", "59 s", "1 min", "1 h 20 min"]
    files = [job_file(f"{i}.md") for i in range(37)] + [job_file(f"q{i}.md", "queued") for i in range(263)]
    running = fake_job("j", "库", files)
    assert progress_text(en, running) == "37/300 files · 2.1 files/s · ETA 1 min"
    assert progress_text(zh, running) == "37/300 个文件 · 2.1 个文件/秒 · 预计还需 1 分钟"
    waiting = fake_job("j", "库", [job_file("q.md", "queued")], state="queued")
    waiting = dataclasses.replace(waiting, started_at=None, eta_s=None)
    assert progress_text(en, waiting) == "0/1 files · waiting for a worker"
    ended = fake_job("j", "库", [job_file("a.md"), job_file("e.txt", "failed", "empty")])
    assert progress_text(en, ended) == "2/2 files · 2.1 files/s · took 2 min"
    assert counts_text(en, ended) == "done 1 · failed 1" and counts_text(zh, ended) == "已完成 1 · 失败 1"
