from server.chat.extractive import extractive_answer, split_sentences
from server.knowledge_base.search import SearchResult


def _result(text: str) -> SearchResult:
    return SearchResult(id="1", page_content=text, metadata={"source": "a.txt"}, score=0.9)


def test_sentences_split_on_chinese_and_english_punctuation() -> None:
    assert split_sentences("第一句。第二句！Third one. Fourth?") == ["第一句。", "第二句！", "Third one.", "Fourth?"]


def test_best_sentences_are_cited_and_highlighted_in_document_order() -> None:
    results = [_result("天气很好。默认端口是 7861。"), _result("Streamlit 界面。端口可以在配置文件中修改。")]
    answer = extractive_answer("默认端口是多少", results)
    lines = answer.splitlines()
    assert lines[0].startswith("- ") and lines[0].endswith("[1]") and "**端口**" in lines[0]
    assert lines[-1].endswith("[2]") and "天气" not in answer


def test_no_matching_sentence_gives_nothing() -> None:
    assert extractive_answer("xyzzy", [_result("天气很好。")]) == ""
