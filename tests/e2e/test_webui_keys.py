"""End-to-end: an API that needs a key. The UI asks for one; the admin issues a read key for one KB in the
browser; that key then sees only its KB; a revoked key is asked for again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import HASH_MODELS, LiveServer, free_port, make_settings

from tests.e2e.harness import require_browser, streamlit_server, write_ui_config
from tests.e2e.test_webui_browser import TIMEOUT, browser, idle, see, shot  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.integration

ADMIN = "e2e-admin-key"
KBS = ("团队甲", "团队乙")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    require_browser()
    tmp = tmp_path_factory.mktemp("webui-keys")
    with LiveServer(make_settings(tmp, api={"api_key": ADMIN})) as api:
        with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
            for name in KBS:
                admin.post("/knowledge_base/create_knowledge_base", json={"knowledge_base_name": name})
        ui_values = {"data_dir": tmp / "ui-unused", "embed_models": HASH_MODELS, "kb": {"default_embed_model": "hash"}}
        config = write_ui_config(tmp / "ui.yaml", api.url, ui_values)  # no webui.api_key: the UI must ask
        with streamlit_server(config, free_port(), tmp / "streamlit.log") as ui:
            yield api.url, ui


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:  # noqa: F811  (the imported fixture)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT)
    yield context.new_page()
    context.close()


def enter_key(page: Any, key: str) -> None:
    see(page, "API 需要密钥")
    page.locator("input[type='password']").fill(key)
    page.get_by_role("button", name="使用此密钥").click()
    idle(page)


def test_the_ui_asks_for_a_key_and_the_admin_issues_one(keyed: tuple[str, str], tab: Any) -> None:
    from playwright.sync_api import expect

    api_url, ui = keyed
    page = tab
    page.goto(f"{ui}/")
    enter_key(page, "wrong")
    see(page, "API 需要密钥")  # refused: asked again
    shot(page, "keys_01_asked")
    enter_key(page, ADMIN)
    see(page, "知识库管理")
    page.goto(f"{ui}/keys")
    enter_key(page, ADMIN)  # a new browser page is a new session
    see(page, "访问密钥与审计日志")
    page.get_by_text("发放新密钥").first.click()
    idle(page)
    page.get_by_label("用途 / 持有人").fill("读者")
    box = page.get_by_role("combobox", name="可访问的知识库")
    box.fill(KBS[0])  # typing opens the list filtered to this KB; Enter takes it
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    expect(page.locator("[data-testid='stMultiSelect']").filter(has_text=KBS[0])).to_be_visible()
    page.get_by_role("button", name="发放新密钥").last.click()
    see(page, "密钥已发放")
    secret = page.locator("[data-testid='stCode'] code").first.inner_text().strip()
    assert secret.startswith("zk-")
    shot(page, "keys_02_issued")
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {secret}"}) as reader:
        assert reader.get("/knowledge_base/list_knowledge_bases").json()["data"] == [KBS[0]]
    page.get_by_role("button", name="退出（忘记密钥）").click()
    enter_key(page, secret)
    see(page, "只有管理员密钥")  # the keys page is the admin's
    page.goto(f"{ui}/")
    enter_key(page, secret)
    see(page, "知识库管理")
    shot(page, "keys_03_reader")
    assert page.get_by_text(KBS[1]).count() == 0
