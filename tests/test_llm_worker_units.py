"""The LLM worker's parts without a server: stop strings, token limits, prompts, loading options."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from server.errors import InvalidInput, ModelLoadError
from server.llm.limits import token_budget
from server.llm.prompt import fallback_prompt
from server.llm.spec import ModelSpec
from server.llm.stops import StopMatcher
from tests.tiny_llm import build_tiny_model


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    return "".join(matcher.feed(piece) for piece in pieces) + matcher.flush()


def test_stop_matcher_cuts_at_a_stop_split_over_pieces() -> None:
    matcher = StopMatcher(["END"])
    assert matcher.feed("hello E") == "hello "  # "E" may start "END": held back
    assert matcher.feed("N") == ""
    assert matcher.feed("D and more") == ""
    assert matcher.stopped and matcher.flush() == ""


def test_stop_matcher_releases_held_text_that_was_no_stop() -> None:
    assert feed_all(StopMatcher(["END"]), ["an E", "NX no EN", "D"]) == "an ENX no "
    assert feed_all(StopMatcher(["END"]), ["tail E"]) == "tail E"
    assert feed_all(StopMatcher(["<x>"]), ["a <", "b <x", "y"]) == "a <b <xy"
    assert feed_all(StopMatcher([]), ["a", "b"]) == "ab"


def test_stop_matcher_picks_the_earliest_of_several() -> None:
    assert feed_all(StopMatcher(["。", "\n\n"]), ["第一句\n\n第二句。"]) == "第一句"


def spec(**values: object) -> ModelSpec:
    return ModelSpec(name="m", path="/x", context_length=100, max_new_tokens=50, **values)  # type: ignore[arg-type]


def test_token_budget() -> None:
    assert token_budget(spec(), 10, None) == 50
    assert token_budget(spec(), 80, None) == 20  # what is left of the context
    assert token_budget(spec(), 10, 7) == 7
    for requested in (0, 51):
        with pytest.raises(InvalidInput, match="between 1 and 50"):
            token_budget(spec(), 10, requested)
    with pytest.raises(InvalidInput, match="at most 20"):
        token_budget(spec(), 80, 30)
    with pytest.raises(InvalidInput, match="shorter history"):
        token_budget(spec(), 100, None)


def test_fallback_prompt_is_role_lines() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "你好"}]
    assert fallback_prompt(messages) == "system: be brief\nuser: 你好\nassistant:"


@pytest.mark.integration
def test_tokenizer_without_template_warns_once_and_uses_the_fallback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from server.llm.loading import load_chat_model

    folder = build_tiny_model(tmp_path / "plain", chat_template=None, positions=256)
    with caplog.at_level(logging.WARNING, logger="server.llm"):
        model = load_chat_model(ModelSpec(name="plain", path=str(folder), device="cpu"))
        messages = [{"role": "user", "content": "hello"}]
        ids = model.encode(messages)
        model.encode(messages)
    warnings = [record for record in caplog.records if "no chat template" in record.getMessage()]
    assert len(warnings) == 1 and "plain" in warnings[0].getMessage()
    assert ids == model.tokenizer("user: hello\nassistant:")["input_ids"]


@pytest.mark.integration
def test_generate_stops_when_cancelled(tiny_model_dir: Path) -> None:
    from server.llm.generation import SamplingParams
    from server.llm.loading import load_chat_model

    model = load_chat_model(ModelSpec(name="tiny", path=str(tiny_model_dir), device="cpu"))
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        cancel.set()

    done = model.generate(
        model.encode([{"role": "user", "content": "hi"}]), SamplingParams(500, 0.0), on_text=on_text, cancel=cancel
    )
    assert done.finish_reason == "cancelled" and done.completion_tokens < 50


@pytest.mark.integration
def test_peft_adapter_is_applied(tiny_model_dir: Path, tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from server.llm.loading import load_chat_model

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    model = load_chat_model(
        ModelSpec(name="tuned", path=str(tiny_model_dir), device="cpu", adapter=str(tmp_path / "adapter"))
    )
    assert isinstance(model.model, peft.PeftModel)
    with pytest.raises(ModelLoadError, match=r"adapter_config\.json"):
        load_chat_model(ModelSpec(name="tuned", path=str(tiny_model_dir), device="cpu", adapter=str(tmp_path)))


@pytest.mark.integration
def test_missing_folder_names_model_and_path(tmp_path: Path) -> None:
    from server.llm.loading import load_chat_model

    with pytest.raises(ModelLoadError, match=r"'ghost'.*nowhere"):
        load_chat_model(ModelSpec(name="ghost", path=str(tmp_path / "nowhere")))
