"""End-to-end: a KB is exported from its settings in the browser, downloaded, and imported under a new name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import HASH_MODELS, LiveServer, free_port, make_settings

from tests.e2e.harness import require_browser, streamlit_server, write_ui_config
from tests.e2e.test_webui_browser import browser, idle, page, pick, press, see, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

KB, COPY = "归档源", "归档副本"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    require_browser()
    tmp = tmp_path_factory.mktemp("webui-archive")
    with LiveServer(make_settings(tmp)) as api:
        with httpx.Client(base_url=api.url) as http:
            http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
            files = [("files", ("说明.md", "# 说明\n\n归档之后还能检索到这句话。".encode(), "text/plain"))]
            http.post("/knowledge_base/upload_docs", data={"knowledge_base_name": KB}, files=files)
        ui_values = {"data_dir": tmp / "ui-unused", "embed_models": HASH_MODELS, "kb": {"default_embed_model": "hash"}}
        config = write_ui_config(tmp / "ui.yaml", api.url, ui_values)
        with streamlit_server(config, free_port(), tmp / "streamlit.log") as ui:
            yield api.url, ui


def test_export_download_and_import_in_the_browser(
    servers: tuple[str, str],
    page: Any,  # noqa: F811  (the imported fixture)
    tmp_path: Path,
) -> None:
    api, ui = servers
    page.goto(f"{ui}/?kb={KB}")
    see(page, "知识库设置")
    idle(page)  # a click during the first run's rerun can be dropped (a cold start is slow)
    page.get_by_text("知识库设置").click()
    press(page, "导出为归档", lambda: page.get_by_role("button", name=f"下载 {KB}.zhiku.zip"))
    with page.expect_download() as download:
        page.get_by_role("button", name=f"下载 {KB}.zhiku.zip").click()
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    assert archive.name == f"{KB}.zhiku.zip" and archive.stat().st_size > 0
    shot(page, "archive_01_exported")

    pick(page, "选择知识库", "+ 新建知识库")
    page.get_by_text("从归档导入知识库").click()
    idle(page)
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(archive))
    see(page, archive.name)
    page.get_by_label("导入后的名称（留空则用归档中的名称）").fill(COPY)
    idle(page)
    page.get_by_role("button", name="导入").click()  # once: a second import of the name would be refused
    see(page, f"已导入 {COPY}：1 个文件")
    shot(page, "archive_02_imported")
    with httpx.Client(base_url=api) as http:
        assert sorted(http.get("/knowledge_base/list_knowledge_bases").json()["data"]) == sorted([KB, COPY])
        body = {"knowledge_base_name": COPY, "query": "归档之后", "top_k": 1}
        assert "归档之后" in http.post("/knowledge_base/search_docs", json=body).json()[0]["page_content"]
