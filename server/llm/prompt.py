"""From chat messages to prompt text: the tokenizer's chat template, or a documented plain fallback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.errors import InvalidInput

Message = dict[str, str]


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def fallback_prompt(messages: Sequence[Message]) -> str:
    """For tokenizers without a chat template: one `role: content` line per message, then `assistant:`."""
    lines = [f"{message['role']}: {message['content']}" for message in messages]
    lines.append("assistant:")
    return "\n".join(lines)


def render_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The prompt text for `messages`, ending where the assistant's answer starts."""
    if not has_chat_template(tokenizer):
        return fallback_prompt(messages)
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    except TemplateError as error:
        raise InvalidInput(f"the model's chat template refused these messages: {error}") from error
    return str(text)


def encode_prompt(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of the prompt; a chat template adds its own special tokens, the fallback gets the tokenizer's."""
    text = render_prompt(tokenizer, messages)
    ids = tokenizer(text, add_special_tokens=not has_chat_template(tokenizer))["input_ids"]
    return [int(token) for token in ids]
