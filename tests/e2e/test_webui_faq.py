"""End-to-end: FAQ pairs are imported and edited in the browser, and the dialogue page answers with them (no model
configured: a direct answer needs none)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import HASH_MODELS, LiveServer, free_port, make_settings

from tests.e2e.harness import require_browser, streamlit_server, write_ui_config
from tests.e2e.test_webui_browser import browser, idle, page, press, see, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

KB = "问答库"
CSV = "问题,相似问题,答案\n怎么重置密码？,忘记密码了,在登录页点击“忘记密码”。\n如何导出数据？,,在设置页点击导出。\n"
EDITED = "请联系管理员重置"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    require_browser()
    tmp = tmp_path_factory.mktemp("webui-faq")
    with LiveServer(make_settings(tmp)) as api:
        with httpx.Client(base_url=api.url) as http:
            http.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": KB})
        ui_values = {"data_dir": tmp / "ui-unused", "embed_models": HASH_MODELS, "kb": {"default_embed_model": "hash"}}
        config = write_ui_config(tmp / "ui.yaml", api.url, ui_values)
        with streamlit_server(config, free_port(), tmp / "streamlit.log") as ui:
            yield api.url, ui


def _answers(api: str) -> list[str]:
    with httpx.Client(base_url=api) as http:
        files = http.get("/knowledge_base/list_faq", params={"knowledge_base_name": KB}).json()["data"]
    return [entry["answer"] for one in files for entry in one["entries"]]


def test_import_edit_and_direct_answer_in_the_browser(
    servers: tuple[str, str],
    page: Any,  # noqa: F811  (the imported fixture)
    tmp_path: Path,
) -> None:
    api, ui = servers
    upload = tmp_path / "help.csv"
    upload.write_text(CSV, encoding="utf-8")
    page.goto(f"{ui}/?kb={KB}&section=faq")
    see(page, "这个知识库还没有问答对")
    idle(page)
    page.get_by_text("导入问答对").click()
    idle(page)
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(upload))
    see(page, "help.csv")
    idle(page)
    page.get_by_role("button", name="导入", exact=True).click()
    see(page, "已导入 help.faq.jsonl：2 条问答，3 个问法")
    shot(page, "faq_01_imported")

    _edit_first_answer(page)
    press(page, "保存问答对", lambda: page.get_by_text("help.faq.jsonl 已保存：2 条问答").first)
    assert _answers(api) == [EDITED, "在设置页点击导出。"]
    shot(page, "faq_02_edited")

    page.goto(f"{ui}/dialogue")
    see(page, "对话模式")
    idle(page)
    page.locator("[data-testid='stSidebar'] label").filter(has_text="知识库问答").first.click()
    idle(page)
    page.get_by_placeholder("输入问题，回车发送").fill("忘记密码了")
    page.keyboard.press("Enter")
    see(page, "直接回答：来自问答对 help.faq.jsonl")
    answer = page.locator("[data-testid='stChatMessage']").nth(1).inner_text()
    assert EDITED in answer
    shot(page, "faq_03_direct_answer")


def _edit_first_answer(tab: Any) -> None:
    """The table is a canvas: select the first row's answer cell, open its editor, type over it, commit."""
    grid = tab.locator("[data-testid='stDataFrame']").first
    grid.locator("canvas").first.wait_for(state="visible")
    idle(tab)
    tab.wait_for_timeout(1000)  # the canvas paints its cells after it is attached; nothing in the DOM says when
    box = grid.bounding_box()
    assert box is not None
    row_height = 35  # Streamlit's data editor: a header row, then rows of this height
    tab.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + row_height * 1.5)
    tab.keyboard.press("Enter")  # opens the cell's editor
    tab.locator("textarea, input[type=text]").last.wait_for(state="visible")
    tab.keyboard.press("Control+a")
    tab.keyboard.type(EDITED)
    tab.keyboard.press("Enter")
    idle(tab)
    shot(tab, "faq_02_cell_edited")
