"""Page logic through Streamlit's AppTest, with the API client replaced by an in-memory fake."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.webui_fake_api import FakeApi, fake_job, job_file
from webui_pages.api_client import ApiError
from webui_pages.api_types import KbInfo


def _app(api: object, page: str, lang: str) -> None:  # runs as its own script: builtins only
    from tests.webui_fake_api import fake_ui_defaults
    from webui_pages.common import UiContext
    from webui_pages.dialogue_page import render_dialogue_page
    from webui_pages.i18n import Translator
    from webui_pages.kb_page import render_kb_page

    ui = UiContext(api, Translator(lang), fake_ui_defaults())
    (render_kb_page if page == "kb" else render_dialogue_page)(ui)


def run_page(api: FakeApi, page: str = "kb", lang: str = "zh") -> AppTest:
    app = AppTest.from_function(_app, args=(api, page, lang), default_timeout=20)
    app.run()
    return app


def texts(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption]
    parts += [e.value for e in app.error] + [w.value for w in app.warning] + [s.value for s in app.success]
    parts += [i.value for i in app.info] + [t.value for t in app.title]
    return "\n".join(str(p) for p in parts)


def click(app: AppTest, label: str) -> None:
    next(button for button in app.button if button.label == label).click().run()


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def test_kb_page_lists_files_of_the_first_kb(api: FakeApi) -> None:
    app = run_page(api)
    assert not app.exception
    assert app.selectbox(key="kb_choice").value == "样例库"
    assert "共 2 个文件 · 第 1/1 页" in texts(app)
    assert ("list_file_details", (0, 50, "file_name", False)) in api.calls


def test_english_ui(api: FakeApi) -> None:
    app = run_page(api, lang="en")
    assert app.title[0].value == "Knowledge base management"
    assert "2 files · page 1 of 1" in texts(app)


def test_sorting_is_asked_of_the_server(api: FakeApi) -> None:
    app = run_page(api)
    app.selectbox(key="files_sort_样例库").set_value("size")
    app.toggle(key="files_desc_样例库").set_value(True).run()
    assert ("list_file_details", (0, 50, "size", True)) in api.calls


def test_create_kb_selects_it(api: FakeApi) -> None:
    app = run_page(api)
    app.selectbox(key="kb_choice").set_value("\x00new").run()
    app.text_input(key="new_kb_name").input("新库")
    click(app, "新建")
    assert not app.exception
    assert ("create_kb", ("新库", "faiss", "hash")) in api.calls
    assert app.selectbox(key="kb_choice").value == "新库"
    assert "已新建知识库「新库」" in texts(app)


def test_duplicate_kb_is_a_readable_4xx(api: FakeApi) -> None:
    app = run_page(api)
    app.selectbox(key="kb_choice").set_value("\x00new").run()
    app.text_input(key="new_kb_name").input("样例库")
    click(app, "新建")
    assert not app.exception
    assert "请求被拒绝（HTTP 409）" in texts(app)


def test_api_down_is_a_message_not_a_traceback(api: FakeApi) -> None:
    api.down = True
    app = run_page(api)
    assert not app.exception
    assert "无法连接 API 服务" in app.error[0].value


def test_delete_kb_needs_confirmation(api: FakeApi) -> None:
    app = run_page(api)
    app.button(key="delete_kb_样例库").click().run()
    assert "样例库" in api.kbs
    assert "确定删除知识库「样例库」" in texts(app)
    app.button(key="delete_kb_yes_样例库").click().run()
    assert "样例库" not in api.kbs
    assert "已删除知识库「样例库」" in texts(app)


def test_delete_from_disk_needs_the_checkbox(api: FakeApi) -> None:
    app = run_page(api)
    app.multiselect(key="files_picked_样例库").set_value(["a.md"]).run()
    assert app.button(key="del_样例库").disabled
    app.checkbox(key="confirm_disk_样例库").check().run()
    app.button(key="del_样例库").click().run()
    assert ("delete_docs", (["a.md"], True)) in api.calls
    assert "已删除 1 个文件" in texts(app)
    assert "共 1 个文件" in texts(app)


def test_search_test_shows_ranked_chunks(api: FakeApi) -> None:
    app = run_page(api)
    app.radio(key="kb_section").set_value("search").run()
    app.text_input(key="search_q_样例库").input("第一")
    click(app, "检索")
    shown = texts(app)
    assert "**#1** · 相似度 0.900 · a.md" in shown and "**#2** · 相似度 0.800" in shown
    assert ("search_docs", ("第一", 3, 0.0, "")) in api.calls


def test_search_test_sends_the_tags_filter(api: FakeApi) -> None:
    app = run_page(api)
    app.radio(key="kb_section").set_value("search").run()
    app.text_input(key="search_q_样例库").input("第一")
    app.text_input(key="search_tags_样例库").input("手册, 2024")
    click(app, "检索")
    assert ("search_docs", ("第一", 3, 0.0, "", "手册", "2024")) in api.calls


def test_search_test_sends_the_chosen_search_mode(api: FakeApi) -> None:
    app = run_page(api)
    app.radio(key="kb_section").set_value("search").run()
    assert app.selectbox(key="search_mode_样例库").options[0] == "默认：混合检索（向量 + 关键词）"
    app.selectbox(key="search_mode_样例库").set_value("keyword")
    app.text_input(key="search_q_样例库").input("第一")
    click(app, "检索")
    assert ("search_docs", ("第一", 3, 0.0, "keyword")) in api.calls


def test_kb_default_search_mode_is_saved(api: FakeApi) -> None:
    app = run_page(api)
    app.selectbox(key="kb_search_mode_样例库").set_value("dense")
    click(app, "保存检索方式")
    assert ("update_search_mode", ("样例库", "dense")) in api.calls
    assert api.kbs["样例库"].search_mode == "dense"


def test_chunk_editor_sends_only_the_edited_chunk(api: FakeApi) -> None:
    app = run_page(api)
    app.radio(key="kb_section").set_value("chunks").run()
    assert "共 2 个分块" in texts(app)
    app.text_area(key="chunk_样例库_a.md_0_c1").input("改过的第一段")
    click(app, "保存修改")
    sent = [args for name, args in api.calls if name == "update_chunks"]
    assert sent == [{"c1": {"page_content": "改过的第一段", "metadata": {"source": "a.md"}}}]
    assert "已保存 1 处分块修改" in texts(app)


def test_rebuild_follows_the_progress_events(api: FakeApi) -> None:
    app = run_page(api)
    app.radio(key="kb_section").set_value("rebuild").run()
    app.button(key="rebuild_样例库").click().run()
    assert not app.exception
    assert "向量库重建完成" in texts(app)


def test_dialogue_without_model_explains_and_kb_chat_still_asks_the_api(api: FakeApi) -> None:
    """No model: KB chat still goes to the API, which answers from the KB (a FAQ's answer, extracted sentences)."""
    app = run_page(api, page="chat")
    assert "尚未配置大模型" in texts(app)
    app.radio(key="chat_mode").set_value("knowledge_base_chat").run()
    api.direct_answer = {"file_name": "help.faq.jsonl", "score": 0.42}
    app.chat_input[0].set_value("第一段是什么").run()
    assert not app.exception
    mode, payload = next(args for name, args in api.calls if name == "chat")
    assert mode == "knowledge_base_chat" and payload["query"] == "第一段是什么"
    assert "直接回答：来自问答对 help.faq.jsonl（相关度 0.42），未调用模型" in texts(app)
    assert "出处（1 条）" in [e.label for e in app.expander]


def test_dialogue_streams_an_answer_with_sources(api: FakeApi) -> None:
    api.models = ["tiny"]
    app = run_page(api, page="chat")
    app.radio(key="chat_mode").set_value("knowledge_base_chat").run()
    app.chat_input[0].set_value("问题").run()
    assert not app.exception
    mode, payload = next(args for name, args in api.calls if name == "chat")
    assert mode == "knowledge_base_chat"
    assert payload["knowledge_base_name"] == "样例库" and payload["model_name"] == "tiny"
    assert "search_mode" not in payload  # the KB's own default applies
    assert "你好，世界" in texts(app)
    assert "出处（1 条）" in [e.label for e in app.expander]


def test_dialogue_switches_local_models(api: FakeApi) -> None:
    api.models = ["tiny", "qwen", "remote"]
    api.states = {"tiny": {"state": "loaded"}, "qwen": {"state": "unloaded"}, "remote": {"state": "online"}}
    app = run_page(api, page="chat")
    assert "已加载" in texts(app)
    app.selectbox(key="chat_model").set_value("qwen").run()
    assert "未加载（首次提问时加载）" in texts(app)
    click(app, "切换到此模型")
    assert ("change_model", ("tiny", "qwen")) in api.calls
    assert "加载中 10%" in texts(app)
    api.states["qwen"] = {"state": "loaded"}
    app.run()
    click(app, "卸载")
    assert ("stop_model", "qwen") in api.calls and not app.exception
    app.selectbox(key="chat_model").set_value("remote").run()
    assert not [b for b in app.button if b.label in ("加载", "卸载", "切换到此模型")]


def test_dialogue_chat_error_is_shown(api: FakeApi) -> None:
    api.models = ["tiny"]
    api.chat_error = ApiError("the LLM worker does not answer", 503)
    app = run_page(api, page="chat")
    app.chat_input[0].set_value("问题").run()
    assert not app.exception
    assert "你好" in texts(app)
    assert any("API 出错（HTTP 503）：the LLM worker does not answer" in e.value for e in app.error)


def test_api_down_on_the_dialogue_page(api: FakeApi) -> None:
    api.down = True
    app = run_page(api, page="chat")
    assert not app.exception
    assert "无法连接 API 服务" in texts(app)


def test_kb_chat_sends_a_chosen_search_mode(api: FakeApi) -> None:
    api.models = ["tiny"]
    app = run_page(api, page="chat")
    app.radio(key="chat_mode").set_value("knowledge_base_chat").run()
    app.selectbox(key="chat_search_mode").set_value("dense").run()
    app.chat_input[0].set_value("问题").run()
    _, payload = next(args for name, args in api.calls if name == "chat")
    assert payload["search_mode"] == "dense"


def test_kb_chat_over_several_kbs_sends_a_list_and_says_each_kb_keeps_its_mode(api: FakeApi) -> None:
    api.kbs["英文库"] = KbInfo("英文库", "", "faiss", "hash", 1, search_mode="keyword")
    app = run_page(api, page="chat")
    app.radio(key="chat_mode").set_value("knowledge_base_chat").run()
    assert app.multiselect(key="chat_kbs").value == ["样例库"]
    app.multiselect(key="chat_kbs").set_value(["样例库", "英文库"]).run()
    assert "默认：各知识库自己的设置" in app.selectbox(key="chat_search_mode").options
    app.chat_input[0].set_value("问题").run()  # no model: the API answers from both KBs
    assert not app.exception
    _, payload = next(args for name, args in api.calls if name == "chat")
    assert payload["knowledge_base_name"] == ["样例库", "英文库"] and "search_mode" not in payload


def jobs_section(api: FakeApi, lang: str = "zh") -> AppTest:
    app = run_page(api, lang=lang)
    app.radio(key="kb_section").set_value("jobs").run()
    return app


def test_an_upload_is_queued_as_a_job_and_the_jobs_panel_opens(api: FakeApi) -> None:
    app = run_page(api)
    app.radio(key="kb_section").set_value("upload").run()
    app.file_uploader[0].set_value([("c.md", b"# c", "text/markdown"), ("empty.txt", b"  ", "text/plain")])
    click(app, "上传并向量化")
    assert not app.exception
    assert ("upload_docs_in_background", ["c.md", "empty.txt"]) in api.calls
    assert app.radio(key="kb_section").value == "jobs"
    shown = texts(app)
    assert "已提交 2 个文件（1 个后台任务）" in shown
    assert app.progress[0].proto.text == "2/2 个文件 · 2.1 个文件/秒 · 用时 2 分钟"
    assert "已完成 1 · 失败 1" in shown
    assert [b.label for b in app.button if b.label.startswith("重试")] == ["重试失败的文件"]


def test_the_jobs_panel_reads_the_api_so_a_reload_shows_the_same(api: FakeApi) -> None:
    files = [job_file(f"{i:04d}.md", "done") for i in range(37)] + [job_file(f"q{i}.md", "queued") for i in range(263)]
    api.jobs["run1"] = fake_job("run1", "样例库", files)
    app = jobs_section(api)
    assert not app.exception
    assert app.progress[0].proto.text == "37/300 个文件 · 2.1 个文件/秒 · 预计还需 1 分钟"
    assert "进行中" in texts(app) and [b.label for b in app.button if b.label == "取消任务"] == ["取消任务"]
    again = jobs_section(api)  # a new session: nothing carried over but the API's state
    assert again.progress[0].proto.text == app.progress[0].proto.text


def test_cancel_and_retry_go_to_the_api_and_say_what_happened(api: FakeApi) -> None:
    api.jobs["ended"] = fake_job("ended", "样例库", [job_file("empty.txt", "failed", "no text could be extracted")])
    api.jobs["live"] = fake_job("live", "样例库", [job_file("q.md", "queued")], state="queued")
    app = jobs_section(api)
    app.button(key="job_cancel_live").click().run()
    assert ("cancel_job", "live") in api.calls and api.jobs["live"].state == "cancelled"
    assert "任务已取消" in texts(app) and not [b for b in app.button if b.label == "取消任务"]
    app.button(key="job_retry_ended").click().run()
    assert ("retry_job", "ended") in api.calls and "已重新排队 1 个文件" in texts(app)
    assert api.jobs["ended"].files is not None and api.jobs["ended"].files[0].attempts == 2
    assert app.button(key="job_cancel_ended")  # queued again, so it can be cancelled


def test_a_cancel_that_comes_too_late_is_a_readable_409(api: FakeApi) -> None:
    api.jobs["live"] = fake_job("live", "样例库", [job_file("q.md", "queued")], state="queued")
    app = jobs_section(api)
    api.jobs["live"] = fake_job("live", "样例库", [job_file("q.md", "done")])  # it ended meanwhile
    app.button(key="job_cancel_live").click().run()
    assert not app.exception
    assert "请求被拒绝（HTTP 409）" in texts(app)


def test_a_1000_file_job_lists_one_page_of_files_failures_first(api: FakeApi) -> None:
    files = [job_file(f"{i:04d}.md") for i in range(995)]
    files += [job_file(f"bad{i}.txt", "failed", "no text could be extracted") for i in range(5)]
    api.jobs["big"] = fake_job("big", "样例库", files)
    app = jobs_section(api, lang="en")
    assert not any(name == "get_job" for name, _ in api.calls)  # a closed list reads no files
    assert "Files (1000)" in [e.label for e in app.expander]
    app.session_state["job_files_big"] = True
    app.run()
    assert not app.exception
    assert ("get_job", ("big", "", 0, 50)) in api.calls  # one page is asked for, not the 1,000 files
    assert "1–50 of 1000 (failures first)" in texts(app)
    table = app.table[0].value
    assert len(table) == 50 and list(table["File"][:5]) == [f"bad{i}.txt" for i in range(5)]
    assert set(table["State"][:5]) == {"failed"} and table["Reason"].iloc[0] == "no text could be extracted"
    app.number_input(key="job_page_big").set_value(20).run()
    assert ("get_job", ("big", "", 950, 50)) in api.calls and "951–1000 of 1000" in texts(app)
    assert app.selectbox(key="job_state_big").options == ["every file", "done", "failed"]
    app.selectbox(key="job_state_big").set_value("failed").run()
    assert ("get_job", ("big", "failed", 0, 50)) in api.calls and "1–5 of 5" in texts(app)
    assert list(app.table[0].value["File"]) == [f"bad{i}.txt" for i in range(5)]


def test_no_jobs_yet(api: FakeApi) -> None:
    app = jobs_section(api, lang="en")
    assert "No jobs yet" in texts(app)


def test_upload_tags_and_chat_tag_filter_reach_the_api(api: FakeApi) -> None:
    from webui_pages.kb_upload import UploadParams, send_batches

    send_batches(api, "样例库", [[("t.md", b"x")]], UploadParams(250, 50, False, False, tags=("手册", "2024")))
    assert api.last_upload_params["tags"] == ("手册", "2024")
    api.models = ["tiny"]
    app = run_page(api, page="chat")
    app.radio(key="chat_mode").set_value("knowledge_base_chat").run()
    app.text_input(key="chat_tags").set_value("手册, 2024").run()
    app.chat_input[0].set_value("问题").run()
    _, payload = next(args for name, args in api.calls if name == "chat")
    assert payload["filter"] == {"tags_any": ["手册", "2024"]}
