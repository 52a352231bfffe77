"""Tags, enabled flags and the search `filter`: the registry's allow-list, and the HTTP routes (offline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.errors import InvalidFilter
from server.knowledge_base.file_filter import FileFacts, FileFilter, allowed_sources, checked_tags
from server.vectorstores.base import AnyOf

JAN = datetime(2024, 1, 1, tzinfo=UTC)
JUN = datetime(2024, 6, 1, tzinfo=UTC)


def facts(name: str, tags: list[str], *, enabled: bool = True, modified: datetime = JAN) -> FileFacts:
    return FileFacts(name, "." + name.rsplit(".", 1)[-1], tags, modified.timestamp(), JAN, enabled)


FILES = [
    facts("manuals/a.pdf", ["manual", "2024"]),
    facts("manuals/b.md", ["manual"], modified=JUN),
    facts("notes/c.md", ["draft"]),
    facts("old.txt", ["manual"], enabled=False),
]


def names(allowed: AnyOf | None) -> set[str]:
    assert allowed is not None
    return set(allowed.values)


def test_no_filter_and_nothing_disabled_needs_no_allow_list() -> None:
    assert allowed_sources(FILES[:3], None) is None
    assert allowed_sources(FILES[:3], FileFilter()) is None


def test_disabled_files_are_always_left_out() -> None:
    assert names(allowed_sources(FILES, None)) == {"manuals/a.pdf", "manuals/b.md", "notes/c.md"}
    assert names(allowed_sources(FILES, FileFilter(tags_any=("manual",)))) == {"manuals/a.pdf", "manuals/b.md"}


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (FileFilter(tags_all=("manual", "2024")), {"manuals/a.pdf"}),
        (FileFilter(tags_any=("draft", "2024")), {"manuals/a.pdf", "notes/c.md"}),
        (FileFilter(pattern="manuals/*"), {"manuals/a.pdf", "manuals/b.md"}),
        (FileFilter(extensions=("MD",)), {"manuals/b.md", "notes/c.md"}),
        (FileFilter(extensions=(".pdf",), file_names=("manuals/a.pdf", "notes/c.md")), {"manuals/a.pdf"}),
        (FileFilter(modified_after=datetime(2024, 3, 1)), {"manuals/b.md"}),  # naive: UTC
        (FileFilter(modified_before=datetime(2024, 3, 1, tzinfo=UTC)), {"manuals/a.pdf", "notes/c.md"}),
        (FileFilter(created_after=JUN), set()),
    ],
)
def test_each_condition(wanted: FileFilter, expected: set[str]) -> None:
    assert names(allowed_sources(FILES, wanted)) == expected


def test_crossed_dates_and_bad_tags_are_refused() -> None:
    with pytest.raises(InvalidFilter, match="swap"):
        FileFilter(created_after=JUN, created_before=JAN)
    with pytest.raises(InvalidFilter, match="empty"):
        checked_tags(["ok", " "])
    assert checked_tags([" a", "b", "a"]) == ["a", "b"]


# -- HTTP ----------------------------------------------------------------------------------------------------

DOCS = {"guide.md": "how to install the pump", "faq.txt": "how to install the pump quickly", "x.md": "pump notes"}


def upload(client: TestClient, docs: dict[str, str], tags: str | None = None) -> None:
    custom = {name: [{"page_content": text}] for name, text in docs.items()}
    files = [("files", (name, text.encode(), "text/plain")) for name, text in docs.items()]
    form = {"knowledge_base_name": "kb", "docs": json.dumps(custom)}
    if tags is not None:
        form["tags"] = tags
    response = client.post("/knowledge_base/upload_docs", data=form, files=files)
    assert response.status_code == 200 and not response.json()["data"]["failed_files"], response.text


def search(client: TestClient, **extra: Any) -> set[str]:
    body = {"knowledge_base_name": "kb", "query": "install pump", "top_k": 10, **extra}
    response = client.post("/knowledge_base/search_docs", json=body)
    assert response.status_code == 200, response.text
    return {hit["metadata"]["source"] for hit in response.json()}


@pytest.fixture
def kb(client: TestClient) -> TestClient:
    response = client.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": "kb"})
    assert response.status_code == 200, response.text
    upload(client, {"guide.md": DOCS["guide.md"]}, tags='["manual", "2024"]')
    upload(client, {"faq.txt": DOCS["faq.txt"]}, tags="faq, manual")
    upload(client, {"x.md": DOCS["x.md"]})
    return client


def details(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/knowledge_base/list_file_details", params={"knowledge_base_name": "kb"})
    return {row["file_name"]: row for row in response.json()["data"]["files"]}


def test_upload_tags_show_in_file_details(kb: TestClient) -> None:
    rows = details(kb)
    assert rows["guide.md"]["tags"] == ["manual", "2024"] and rows["faq.txt"]["tags"] == ["faq", "manual"]
    assert rows["x.md"]["tags"] == [] and all(row["enabled"] for row in rows.values())


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_search_filter_by_tags_extension_and_pattern(kb: TestClient, mode: str) -> None:
    assert search(kb, search_mode=mode, filter={"tags_all": ["manual", "2024"]}) == {"guide.md"}
    assert search(kb, search_mode=mode, filter={"extensions": ["txt"]}) == {"faq.txt"}
    assert search(kb, search_mode=mode, filter={"pattern": "*.md", "tags_any": ["manual"]}) == {"guide.md"}
    assert search(kb, search_mode=mode, filter={"tags_any": ["nothing"]}) == set()


def test_retagging_and_disabling_apply_to_the_next_search(kb: TestClient) -> None:
    body = {"knowledge_base_name": "kb", "file_name": "x.md", "tags": ["manual"]}
    response = kb.post("/knowledge_base/update_file_tags", json=body)
    assert response.status_code == 200 and response.json()["data"]["tags"] == ["manual"], response.text
    assert search(kb, filter={"tags_any": ["manual"]}) == {"guide.md", "faq.txt", "x.md"}
    body = {"knowledge_base_name": "kb", "file_name": "faq.txt", "enabled": False}
    response = kb.post("/knowledge_base/set_file_enabled", json=body)
    assert response.status_code == 200 and response.json()["data"]["enabled"] is False, response.text
    assert search(kb) == {"guide.md", "x.md"}
    assert search(kb, search_mode="keyword") == {"guide.md", "x.md"}
    assert search(kb, file_name="faq.txt") == set()
    assert details(kb)["faq.txt"]["enabled"] is False
    kb.post("/knowledge_base/set_file_enabled", json={**body, "enabled": True})
    assert search(kb) == {"guide.md", "faq.txt", "x.md"}


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"colour": "red"}, "colour"),
        ({"modified_after": "yesterday"}, "modified_after"),
        ({"created_after": "2024-06-01", "created_before": "2024-01-01"}, "swap"),
    ],
)
def test_bad_filters_get_a_422_that_names_the_problem(kb: TestClient, bad: dict[str, Any], named: str) -> None:
    body = {"knowledge_base_name": "kb", "query": "pump", "filter": bad}
    response = kb.post("/knowledge_base/search_docs", json=body)
    assert response.status_code == 422 and named in response.text, response.text
    assert "Traceback" not in response.text


def test_tagging_an_unknown_file_is_a_404_and_bad_tags_a_422(kb: TestClient) -> None:
    body = {"knowledge_base_name": "kb", "file_name": "missing.md", "tags": ["a"]}
    assert kb.post("/knowledge_base/update_file_tags", json=body).status_code == 404
    response = kb.post("/knowledge_base/update_file_tags", json={**body, "file_name": "x.md", "tags": [""]})
    assert response.status_code == 422 and "empty" in response.text
    files = [("files", ("y.md", b"pump", "text/plain"))]
    response = kb.post("/knowledge_base/upload_docs", data={"knowledge_base_name": "kb", "tags": "[1]"}, files=files)
    assert response.status_code == 422 and "list of strings" in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/chat/knowledge_base_chat", {"query": "pump", "knowledge_base_name": "kb"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "pump"}], "knowledge_base_name": "kb"}),
    ],
)
def test_chat_routes_refuse_a_bad_filter(kb: TestClient, path: str, body: dict[str, Any]) -> None:
    response = kb.post(path, json={**body, "filter": {"tags": ["manual"]}})
    assert response.status_code == 422 and "tags" in response.text, response.text


def test_kb_chat_cites_only_the_filtered_files(kb: TestClient) -> None:
    body = {"query": "install pump", "knowledge_base_name": "kb", "top_k": 5, "stream": False}
    answer = kb.post("/chat/knowledge_base_chat", json={**body, "filter": {"extensions": [".txt"]}})
    docs = json.loads(answer.text.split("data: ", 1)[1])["docs"]
    assert len(docs) == 1 and "faq.txt" in docs[0], docs


def test_web_ui_shows_and_splits_tags() -> None:
    from webui_pages.api_types import FileRow
    from webui_pages.i18n import Translator
    from webui_pages.kb_files import split_tags, table_columns

    assert split_tags(" manual, ,2024, manual ") == ["manual", "2024"]
    row = FileRow.from_api({"file_name": "a.md", "tags": ["manual", "2024"], "enabled": False})
    columns = table_columns(Translator("en"), [row])
    assert columns["Tags"] == ["manual, 2024"] and columns["Enabled"] == ["—"]


def test_a_background_upload_gives_its_files_their_tags(kb: TestClient) -> None:
    from conftest import wait_job_ended

    form = {"knowledge_base_name": "kb", "tags": "pumps, 2024", "background": "true"}
    response = kb.post("/knowledge_base/upload_docs", data=form, files=[("files", ("z.md", b"pump", "text/plain"))])
    assert response.status_code == 202, response.text
    assert wait_job_ended(kb, response.json()["data"]["job_id"])["state"] == "done"
    body = {"knowledge_base_name": "kb", "query": "pump", "top_k": 5, "filter": {"tags_all": ["pumps", "2024"]}}
    assert [hit["metadata"]["source"] for hit in kb.post("/knowledge_base/search_docs", json=body).json()] == ["z.md"]
    bad = kb.post("/knowledge_base/upload_docs", data={**form, "tags": "x" * 200}, files=[("files", ("y.md", b"y"))])
    assert bad.status_code == 422


def test_tags_and_enabled_survive_a_rebuild(kb: TestClient) -> None:
    kb.post(
        "/knowledge_base/set_file_enabled", json={"knowledge_base_name": "kb", "file_name": "x.md", "enabled": False}
    )
    with kb.stream("POST", "/knowledge_base/recreate_vector_store", json={"knowledge_base_name": "kb"}) as response:
        assert response.status_code == 200
        "".join(response.iter_text())
    rows = details(kb)
    assert rows["guide.md"]["tags"] == ["manual", "2024"] and rows["x.md"]["enabled"] is False
    assert search(kb) == {"guide.md", "faq.txt"}


def test_a_file_asked_by_name_or_metadata_must_also_pass_the_filter(kb: TestClient) -> None:
    assert search(kb, file_name="faq.txt", filter={"extensions": ["txt"]}) == {"faq.txt"}
    assert search(kb, file_name="faq.txt", filter={"extensions": ["md"]}) == set()
    assert search(kb, metadata={"source": "guide.md"}, filter={"extensions": ["md"]}) == {"guide.md"}
    assert search(kb, metadata={"source": "guide.md"}, filter={"tags_any": ["faq"]}) == set()


def test_web_ui_client_sends_the_filter_and_label_requests() -> None:
    import httpx

    from webui_pages.api_client import ApiClient

    sent: list[tuple[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content)))
        if request.url.path.endswith("search_docs"):
            return httpx.Response(200, json=[])
        return httpx.Response(200, json={"code": 200, "msg": "ok", "data": {}})

    api = ApiClient("http://api.test", transport=httpx.MockTransport(answer))
    api.search_docs("kb", "pump", top_k=5, score_threshold=0.0, tags_any=["faq"])
    api.set_file_enabled("kb", "faq.txt", False)
    api.update_file_tags("kb", "x.md", ["faq"])
    assert sent[0][1]["filter"] == {"tags_any": ["faq"]}
    assert sent[1] == (
        "/knowledge_base/set_file_enabled",
        {"knowledge_base_name": "kb", "file_name": "faq.txt", "enabled": False},
    )
    assert sent[2] == (
        "/knowledge_base/update_file_tags",
        {"knowledge_base_name": "kb", "file_name": "x.md", "tags": ["faq"]},
    )
